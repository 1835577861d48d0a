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
from ..retry_policy import next_attempt_at
from ..transitions import WORKER_LOST_PATH, requeue_lost

RUNNING = TaskResultStatus.RUNNING
BATCH_SIZE = 100
__all__ = ["WORKER_LOST_PATH", "prune", "requeue_lost", "rescue", "stranded_tasks"]


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
