"""Status changes made on purpose: cancel, retry, requeue, make due.

Each is one UPDATE guarded by the status it expects, so a worker claiming or
finishing a task at the same moment is never overwritten: the task is simply
not changed. Each returns how many tasks it changed.
"""

from collections.abc import Sequence

from django.db.models import QuerySet
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone

from ..models import DatabaseTask
from ..sql import AppendError

READY = TaskResultStatus.READY
RUNNING = TaskResultStatus.RUNNING
FAILED = TaskResultStatus.FAILED


class TaskCancelled(Exception):
    """The error recorded on a cancelled task."""


CANCELLED_PATH = f"{TaskCancelled.__module__}.{TaskCancelled.__qualname__}"


def cancel(tasks: QuerySet[DatabaseTask], reason: str) -> int:
    """READY tasks become FAILED with a TaskCancelled error and a cancellation
    mark that keeps every automatic retry path (``allow_retry``) away from
    them. Backends that handed the tasks elsewhere are told."""
    candidates = list(
        tasks.order_by().filter(status=READY).values_list("pk", flat=True)
    )
    if not candidates:
        return 0
    now = timezone.now()
    changed = (
        tasks.model.objects.using(tasks.db)
        .filter(pk__in=candidates, status=READY)
        .update(
            status=FAILED,
            finished_at=now,
            cancelled_at=now,
            errors=AppendError(CANCELLED_PATH, f"{CANCELLED_PATH}: {reason}\n"),
        )
    )
    if changed:
        _tell_backends(
            tasks.model.objects.using(tasks.db).filter(
                pk__in=candidates, cancelled_at=now
            )
        )
    return changed


def _tell_backends(cancelled: QuerySet[DatabaseTask]) -> None:
    by_backend: dict[str, list[str]] = {}
    for pk, backend_name in cancelled.values_list("pk", "backend_name"):
        by_backend.setdefault(backend_name, []).append(str(pk))
    for backend_name, task_ids in by_backend.items():
        if backend_name in task_backends.settings:
            hook = getattr(task_backends[backend_name], "on_tasks_cancelled", None)
            if hook is not None:
                hook(task_ids)


def retry(tasks: QuerySet[DatabaseTask]) -> int:
    """FAILED tasks go back to READY, due now; earlier errors are kept. A
    person retrying a cancelled task means it, so the mark is cleared."""
    return (
        tasks.order_by()
        .filter(status=FAILED)
        .update(
            status=READY, due_at=timezone.now(), finished_at=None, cancelled_at=None
        )
    )


def requeue(tasks: QuerySet[DatabaseTask]) -> int:
    """RUNNING tasks go back to READY. A task still running somewhere runs
    again, and its first outcome is not stored."""
    return tasks.order_by().filter(status=RUNNING).update(status=READY, worker_id="")


def make_due(tasks: QuerySet[DatabaseTask]) -> int:
    """READY tasks become due now, deferred ones included."""
    return tasks.order_by().filter(status=READY).update(due_at=timezone.now())


def release_held(using: str, worker_id: str, keep: Sequence = ()) -> int:
    """RUNNING tasks held by ``worker_id`` other than ``keep`` go back to READY:
    a claim the worker never heard back from (its connection dropped after
    the database committed it) is not stranded."""
    held = DatabaseTask.objects.using(using).filter(status=RUNNING, worker_id=worker_id)
    return held.exclude(pk__in=list(keep)).update(status=READY, worker_id="")
