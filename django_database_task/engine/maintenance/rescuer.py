"""Rescuing the tasks of dead workers, and pruning the dead from the registry.

A RUNNING task is rescued when the worker holding it has not heartbeated for
the backend's ``RESCUE_AFTER`` seconds, or, when that worker is not in the
registry at all, when its attempt started longer ago than that. A task on a
live worker is never touched, however long it runs. Any live worker may
rescue; every change is guarded by the task's status and holder, so several
rescuing at once rescue each task once.

A task the dead worker had started costs the attempt: READY after the retry
backoff, or FAILED once the attempts are used, with a WorkerLost error. A
task it had only claimed ahead, which its started list does not name, goes
back to READY as it was, the claim not counted.
"""

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.tasks import TaskResultStatus
from django.utils import timezone

from ...backends import DatabaseTaskBackend
from ...models import DatabaseTask, DatabaseTaskWorker
from ...sql import among_running
from ..retry_policy import next_attempt_at
from ..transitions import WORKER_LOST_PATH, release_unstarted_of_dead, requeue_lost

RUNNING = TaskResultStatus.RUNNING
BATCH_SIZE = 100
__all__ = ["WORKER_LOST_PATH", "prune", "requeue_lost", "rescue", "stranded_tasks"]


def stranded_tasks(backend: DatabaseTaskBackend, now: datetime):
    """RUNNING tasks of the backend whose worker is dead."""
    cutoff = now - timedelta(seconds=backend.rescue_after)
    workers = DatabaseTaskWorker.objects.using(backend.database)
    holder = workers.filter(pk=OuterRef("worker_id"))
    return among_running(
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
    """Take back up to ``batch_size`` stranded tasks; returns how many were
    taken back."""
    now = now or timezone.now()
    candidates = list(
        stranded_tasks(backend, now).only(
            "pk",
            "worker_id",
            "worker_ids",
            "max_attempts",
            "retry_backoff",
            "retry_backoff_max",
        )[:batch_size]
    )
    started = _started_lists(backend, {task.worker_id for task in candidates})
    rescued = 0
    for task in candidates:
        listed = started.get(task.worker_id)
        if listed is not None and str(task.pk) not in listed:
            rescued += release_unstarted_of_dead(
                backend, row=task, worker_id=task.worker_id
            )
            continue
        rescued += requeue_lost(
            backend,
            pk=task.pk,
            worker_id=task.worker_id,
            retry_at=next_attempt_at(
                attempts_used=len(task.worker_ids),
                max_attempts=task.max_attempts,
                retry_backoff=task.retry_backoff,
                retry_backoff_max=task.retry_backoff_max,
                now=now,
            ),
            reason=f"Worker {task.worker_id} stopped heartbeating while running "
            "the task.",
            now=now,
        )
    return rescued


def _started_lists(
    backend: DatabaseTaskBackend, worker_ids: set[str]
) -> dict[str, set[str]]:
    """The started lists of the workers that keep one."""
    if not worker_ids:
        return {}
    rows = (
        DatabaseTaskWorker.objects.using(backend.database)
        .filter(pk__in=worker_ids, started_task_ids__isnull=False)
        .values_list("pk", "started_task_ids")
    )
    return {pk: set(task_ids) for pk, task_ids in rows}


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
