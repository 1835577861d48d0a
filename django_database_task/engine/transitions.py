"""Status changes made on purpose: cancel, retry, requeue, make due, and the
taking back of tasks from lost workers (rescue, stale requeue, lost claims)
and of claimed tasks a stopping worker never started.

Each is one UPDATE guarded by the status it expects, so a worker claiming or
finishing a task at the same moment is never overwritten: the task is simply
not changed. Each returns how many tasks it changed.
"""

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone

from ..backends import DatabaseTaskBackend
from ..models import DatabaseTask
from ..sql import AppendError, among_running, status_recheck
from .retry_policy import WorkerLost
from .signals import task_rescued

READY = TaskResultStatus.READY
RUNNING = TaskResultStatus.RUNNING
FAILED = TaskResultStatus.FAILED


class TaskCancelled(Exception):
    """The error recorded on a cancelled task."""


CANCELLED_PATH = f"{TaskCancelled.__module__}.{TaskCancelled.__qualname__}"
WORKER_LOST_PATH = f"{WorkerLost.__module__}.{WorkerLost.__qualname__}"


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
    """RUNNING tasks held by ``worker_id`` other than ``keep`` go back to READY
    as they were: a claim the worker never heard back from (its connection
    dropped after the database committed it) is not stranded, and, the task
    never having run, does not count as an attempt."""
    held = DatabaseTask.objects.using(using).filter(status=RUNNING, worker_id=worker_id)
    rows = among_running(held.exclude(pk__in=list(keep)).only("pk", "worker_ids"))
    return release_unstarted(using, worker_id, list(rows))


def release_unstarted(using: str, worker_id: str, rows: Sequence[DatabaseTask]) -> int:
    """Claimed tasks that ``worker_id`` never started go back to READY as they
    were: the claim does not count as an attempt. Only tasks it still holds."""
    released = 0
    with transaction.atomic(using=using):
        for row in rows:
            earlier = row.worker_ids[:-1]
            values: dict[str, object] = {
                "status": READY,
                "worker_id": "",
                "worker_ids": earlier,
            }
            if not earlier:
                values |= {"started_at": None, "last_attempted_at": None}
            released += (
                DatabaseTask.objects.using(using)
                .filter(status_recheck(RUNNING), pk=row.pk, worker_id=worker_id)
                .update(**values)
            )
    return released


def requeue_lost(
    backend: DatabaseTaskBackend,
    *,
    pk,
    worker_id: str,
    retry_at: datetime | None,
    reason: str,
    now: datetime,
) -> int:
    """READY at ``retry_at``, or FAILED when None, with a WorkerLost error;
    only if ``worker_id`` still holds the task, then ``task_rescued`` is sent.
    Returns 1 or 0."""
    values: dict[str, object] = {
        "worker_id": "",
        "errors": AppendError(WORKER_LOST_PATH, f"{WORKER_LOST_PATH}: {reason}\n"),
    }
    if retry_at is None:
        values |= {"status": TaskResultStatus.FAILED, "finished_at": now}
    else:
        values |= {"status": TaskResultStatus.READY, "due_at": retry_at}
    tasks = DatabaseTask.objects.using(backend.database).filter(pk=pk)
    held = tasks.filter(status_recheck(RUNNING), worker_id=worker_id)
    changed = held.update(**values)
    if changed:
        _announce_rescue(backend, pk, values["status"])
    return changed


def release_unstarted_of_dead(
    backend: DatabaseTaskBackend, *, row: DatabaseTask, worker_id: str
) -> int:
    """A task the dead worker ``worker_id`` had claimed ahead and never
    started goes back to READY as it was (``release_unstarted``), and
    ``task_rescued`` is sent. Returns 1 or 0."""
    changed = release_unstarted(backend.database, worker_id, [row])
    if changed:
        _announce_rescue(backend, row.pk, READY)
    return changed


def _announce_rescue(backend: DatabaseTaskBackend, pk, status: object) -> None:
    # The path and queue are read only when someone listens (metrics).
    if not task_rescued.has_listeners(type(backend)):
        return
    tasks = DatabaseTask.objects.using(backend.database).filter(pk=pk)
    found = tasks.values_list("task_path", "queue_name").first()
    if found is not None:
        task_rescued.send_robust(
            type(backend),
            backend_name=backend.alias,
            task_id=str(pk),
            task_path=found[0],
            queue_name=found[1],
            status=status,
        )
