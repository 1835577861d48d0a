"""Rescuing the tasks of dead workers, and pruning the dead from the registry.

A RUNNING task is rescued when the worker holding it has not heartbeated for
the backend's ``RESCUE_AFTER`` seconds, or, when that worker is not in the
registry at all, when its attempt started longer ago than that. A task on a
live worker is never touched, however long it runs. Any live worker may
rescue; every change is guarded by the task's status and holder, so several
rescuing at once rescue each task once.
"""

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.tasks import TaskResultStatus
from django.utils import timezone

from ...backends import DatabaseTaskBackend
from ...models import DatabaseTask, DatabaseTaskWorker
from ...sql import AppendError
from ..retry_policy import WorkerLost, next_attempt_at
from ..signals import task_rescued

RUNNING = TaskResultStatus.RUNNING
WORKER_LOST_PATH = f"{WorkerLost.__module__}.{WorkerLost.__qualname__}"
BATCH_SIZE = 100


def stranded_tasks(backend: DatabaseTaskBackend, now: datetime):
    """RUNNING tasks of the backend whose worker is dead."""
    cutoff = now - timedelta(seconds=backend.rescue_after)
    workers = DatabaseTaskWorker.objects.using(backend.database)
    holder = workers.filter(pk=OuterRef("worker_id"))
    return (
        DatabaseTask.objects.using(backend.database)
        .filter(backend_name=backend.alias, status=RUNNING)
        .exclude(worker_id="")
        .exclude(Exists(holder.filter(last_heartbeat_at__gte=cutoff)))
        .filter(Q(Exists(holder)) | Q(last_attempted_at__lt=cutoff))
    )


def rescue(
    backend: DatabaseTaskBackend,
    *,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Put up to ``batch_size`` stranded tasks back to READY (after the retry
    backoff) or, once they have used their attempts, FAILED; each gets a
    WorkerLost error. Returns how many were rescued."""
    now = now or timezone.now()
    candidates = stranded_tasks(backend, now).values_list(
        "pk",
        "worker_id",
        "worker_ids",
        "max_attempts",
        "retry_backoff",
        "retry_backoff_max",
    )[:batch_size]
    rescued = 0
    for pk, worker_id, worker_ids, max_attempts, backoff, backoff_max in candidates:
        rescued += requeue_lost(
            backend,
            pk=pk,
            worker_id=worker_id,
            retry_at=next_attempt_at(
                attempts_used=len(worker_ids),
                max_attempts=max_attempts,
                retry_backoff=backoff,
                retry_backoff_max=backoff_max,
                now=now,
            ),
            reason=f"Worker {worker_id} stopped heartbeating while running the task.",
            now=now,
        )
    return rescued


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
    changed = tasks.filter(status=RUNNING, worker_id=worker_id).update(**values)
    # The path and queue are read only when someone listens (metrics).
    if changed and task_rescued.has_listeners(type(backend)):
        found = tasks.values_list("task_path", "queue_name").first()
        if found is not None:
            task_rescued.send_robust(
                type(backend),
                backend_name=backend.alias,
                task_id=str(pk),
                task_path=found[0],
                queue_name=found[1],
                status=values["status"],
            )
    return changed


def prune(backend: DatabaseTaskBackend, *, now: datetime | None = None) -> int:
    """Delete dead workers that hold no RUNNING task any more."""
    cutoff = (now or timezone.now()) - timedelta(seconds=backend.rescue_after)
    holding = DatabaseTask.objects.using(backend.database).filter(
        status=RUNNING, worker_id=OuterRef("pk")
    )
    deleted, _ = (
        DatabaseTaskWorker.objects.using(backend.database)
        .filter(backend_name=backend.alias, last_heartbeat_at__lt=cutoff)
        .exclude(Exists(holding))
        .delete()
    )
    return deleted
