"""The cleaner: deleting finished tasks in short batches."""

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import QuerySet
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResultStatus
from django.utils import timezone

from ...backends import get_backend
from ...models import DatabaseTask

PURGEABLE_STATUSES = (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
DEFAULT_PURGE_STATUSES = ("SUCCESSFUL", "FAILED")
MAX_BATCH_SIZE = 10_000
# A century: older dates overflow soon after (days=1_000_000 is OverflowError).
MAX_DAYS = 36_500


def parse_statuses(statuses: str | Iterable[str]) -> list[str]:
    """Validate statuses given as a list or a comma-separated string."""
    if isinstance(statuses, str):
        statuses = statuses.split(",")
    names = [str(status).strip().upper() for status in statuses]
    names = [name for name in names if name]
    allowed = ", ".join(PURGEABLE_STATUSES)
    if not names:
        raise ValueError(f"No status given; choose from {allowed}.")
    for name in names:
        if name in (TaskResultStatus.READY, TaskResultStatus.RUNNING):
            raise ValueError(
                f"Refusing to purge {name} tasks: they have not finished. "
                f"Only {allowed} tasks can be purged."
            )
        if name not in PURGEABLE_STATUSES:
            raise ValueError(f"Unknown status {name!r}; choose from {allowed}.")
    return names


def _check_int(name: str, value: object, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {value!r}.")
    if not minimum <= value <= maximum:
        raise ValueError(
            f"{name} must be between {minimum} and {maximum}, not {value}."
        )
    return value


def purgeable_tasks(
    *,
    days: int = 0,
    statuses: str | Iterable[str] = DEFAULT_PURGE_STATUSES,
    task_path: str | None = None,
    backend_name: str = DEFAULT_TASK_BACKEND_ALIAS,
) -> QuerySet[DatabaseTask]:
    """Finished tasks of the backend, finished more than ``days`` days ago
    (any time with ``days=0``)."""
    _check_int("days", days, 0, MAX_DAYS)
    backend = get_backend(backend_name)
    tasks = DatabaseTask.objects.using(backend.database).filter(
        backend_name=backend.alias, status__in=parse_statuses(statuses)
    )
    if days:
        tasks = tasks.filter(finished_at__lt=timezone.now() - timedelta(days=days))
    if task_path:
        tasks = tasks.filter(task_path=task_path)
    return tasks


def purge_completed_tasks(
    days: int = 0,
    statuses: str | Iterable[str] = DEFAULT_PURGE_STATUSES,
    batch_size: int = 1000,
    dry_run: bool = False,
    task_path: str | None = None,
    backend_name: str = DEFAULT_TASK_BACKEND_ALIAS,
) -> int:
    """Delete finished tasks, ``batch_size`` rows per statement so that no
    lock is held for long; return how many were (or, with ``dry_run``,
    would be) deleted."""
    _check_int("batch_size", batch_size, 1, MAX_BATCH_SIZE)
    tasks = purgeable_tasks(
        days=days, statuses=statuses, task_path=task_path, backend_name=backend_name
    )
    if dry_run:
        return tasks.count()
    deleted = 0
    while True:
        batch = list(tasks.values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        count, _ = tasks.filter(pk__in=batch).delete()
        deleted += count
