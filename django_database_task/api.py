"""The programmatic API: run, count and inspect tasks without a command."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Min, Q
from django.tasks import (
    DEFAULT_TASK_BACKEND_ALIAS,
    Task,
    TaskResult,
    TaskResultStatus,
    task_backends,
)
from django.tasks.exceptions import InvalidTaskBackend, TaskResultDoesNotExist
from django.utils import timezone

from .backends import DatabaseTaskBackend, get_backend
from .engine import registry
from .engine.worker import Worker
from .models import DatabaseTask
from .validation import check_text


def bulk_enqueue(
    task: Task, calls: Iterable[tuple[Sequence[Any], Mapping[str, Any]]]
) -> list[TaskResult]:
    """Enqueue ``task`` once per ``(args, kwargs)`` pair of ``calls``, all or
    nothing, one statement per chunk (``COPY`` on PostgreSQL, a multi-row
    INSERT elsewhere); the task's backend must keep its tasks in the
    database."""
    backend = task.get_backend()
    if not isinstance(backend, DatabaseTaskBackend):
        raise InvalidTaskBackend(
            f"Task backend {backend.alias!r} is a {type(backend).__name__}, not a "
            "DatabaseTaskBackend: bulk_enqueue needs a database backend."
        )
    return backend.bulk_enqueue(task, calls)


def process_one_task(
    queue_name: str | None = None,
    backend_name: str = DEFAULT_TASK_BACKEND_ALIAS,
) -> TaskResult | None:
    """Claim and run the next due task; None when there is none."""
    results = _run_tasks(queue_name, backend_name, max_tasks=1)
    return results[0] if results else None


def process_tasks(
    queue_name: str | None = None,
    backend_name: str = DEFAULT_TASK_BACKEND_ALIAS,
    max_tasks: int = 10,
) -> list[TaskResult]:
    """Run due tasks one after another until none is left or ``max_tasks``
    have run."""
    if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1:
        raise ValueError(f"max_tasks must be a positive integer, not {max_tasks!r}.")
    return _run_tasks(queue_name, backend_name, max_tasks=max_tasks)


def _run_tasks(
    queue_name: str | None, backend_name: str, max_tasks: int
) -> list[TaskResult]:
    results: list[TaskResult] = []
    Worker(
        get_backend(backend_name),
        queue_names=_queue_names(queue_name),
        max_tasks=max_tasks,
        on_result=results.append,
    ).run()
    return results


def run_task_by_id(
    task_id: str,
    allow_retry: bool = False,
    backend_name: str | None = None,
) -> TaskResult | None:
    """Run one task now, even if it is not due yet.

    Without ``backend_name`` the task runs whichever database backend enqueued
    it (ids are UUIDs); with it, only a task of that backend is found.
    ``allow_retry`` also runs a FAILED task, unless it was cancelled. Returns
    None when the task is not runnable; raises TaskResultDoesNotExist for an
    unknown or malformed id.
    """
    if backend_name is not None:
        backend = get_backend(backend_name)
    else:
        backend = _backend_of_task(task_id)
    try:
        result = Worker(backend).run_task(task_id, allow_retry=allow_retry)
    except (ValidationError, ValueError, TypeError):
        raise TaskResultDoesNotExist(task_id) from None
    if result is None:
        # Only now tell "unknown" from "not runnable": the claim is the
        # common case and needs no second query.
        backend.get_row(task_id)
    return result


def _backend_of_task(task_id: str) -> DatabaseTaskBackend:
    """The configured database backend that enqueued the task ``task_id``."""
    backends = [
        backend
        for backend in task_backends.all()
        if isinstance(backend, DatabaseTaskBackend)
    ]
    for database in dict.fromkeys(backend.database for backend in backends):
        try:
            found = (
                DatabaseTask.objects.using(database)
                .filter(pk=task_id)
                .values_list("backend_name", flat=True)
                .first()
            )
        except (ValidationError, ValueError, TypeError):
            raise TaskResultDoesNotExist(task_id) from None
        for backend in backends:
            if backend.database == database and backend.alias == found:
                return backend
    raise TaskResultDoesNotExist(task_id)


def _queue_names(queue_name: str | None) -> list[str]:
    if queue_name is not None and not isinstance(queue_name, str):
        raise TypeError(f"queue_name must be a string or None, not {queue_name!r}.")
    return [check_text(queue_name, "queue_name")] if queue_name else []


def _tasks(backend: DatabaseTaskBackend, queue_name: str | None):
    tasks = DatabaseTask.objects.using(backend.database).filter(
        backend_name=backend.alias
    )
    return (
        tasks.filter(queue_name__in=_queue_names(queue_name)) if queue_name else tasks
    )


def get_pending_task_count(
    queue_name: str | None = None,
    backend_name: str = DEFAULT_TASK_BACKEND_ALIAS,
) -> int:
    """READY tasks, delayed ones included."""
    backend = get_backend(backend_name)
    return _tasks(backend, queue_name).filter(status=TaskResultStatus.READY).count()


def get_queue_stats(
    queue_name: str | None = None,
    backend_name: str = DEFAULT_TASK_BACKEND_ALIAS,
) -> dict[str, Any]:
    """Counts per status, how many READY tasks are delayed, since when the
    oldest due task has been waiting (None if none is), and how many live
    workers serve the queue (any queue, without ``queue_name``): with none,
    nothing runs the tasks."""
    backend = get_backend(backend_name)
    now = timezone.now()
    ready = Q(status=TaskResultStatus.READY)
    due = ready & Q(due_at__lte=now)
    stats = _tasks(backend, queue_name).aggregate(
        **{
            status.lower(): Count("pk", filter=Q(status=status))
            for status in TaskResultStatus.values
        },
        delayed=Count("pk", filter=ready & Q(due_at__gt=now)),
        oldest_pending_since=Min("due_at", filter=due),
    )
    live = registry.live_workers(backend, now)
    if queue_name:
        # A worker with no queues serves them all. Few rows: filtered here,
        # as SQLite has no JSON "contains" lookup.
        served = live.values_list("queues", flat=True)
        stats["workers"] = sum(not queues or queue_name in queues for queues in served)
    else:
        stats["workers"] = live.count()
    return stats
