"""Search by task id or task path."""

import uuid


def search_tasks(queryset, term: str):
    """A full UUID finds that task (by primary key, an index lookup); any
    other term matches part of the task path."""
    term = term.strip()
    if not term:
        return queryset
    try:
        return queryset.filter(pk=uuid.UUID(term))
    except ValueError:
        return queryset.filter(task_path__icontains=term)
