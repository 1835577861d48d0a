"""Requeueing, on demand, RUNNING tasks whose attempt started too long ago.

The rescuer trusts heartbeats and so never touches a task whose holder it
cannot judge: one claimed before the worker registry existed (no
``worker_id``). This is the operator's tool for those, and for any task
they judge stuck: the clock alone decides, whoever holds the task. Each task
then goes the rescuer's way (``transitions.requeue_lost``): a WorkerLost error,
READY after the retry backoff or FAILED, guarded by status and holder, so a
worker finishing the task meanwhile keeps its outcome.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone

from ...backends import DatabaseTaskBackend
from ...models import DatabaseTask
from ...sql import among_running
from ..retry_policy import next_attempt_at
from ..transitions import requeue_lost
from .rescuer import BATCH_SIZE, RUNNING

# A year: an attempt older than that is stale by any measure, and far longer
# thresholds overflow datetime arithmetic.
MAX_OLDER_THAN = timedelta(days=365)
MAX_BATCH_SIZE = 10_000
FIELDS = (
    "pk",
    "task_path",
    "queue_name",
    "worker_id",
    "last_attempted_at",
    "worker_ids",
    "max_attempts",
    "retry_backoff",
    "retry_backoff_max",
)


@dataclass(frozen=True)
class StaleTask:
    """A stale task and what became of it (or would, on a dry run)."""

    id: UUID
    task_path: str
    queue_name: str
    worker_id: str
    last_attempted_at: datetime
    attempts_used: int
    max_attempts: int
    # When it runs again; None when it is FAILED.
    retry_at: datetime | None
    # False on a dry run, or when it finished or moved on before the update.
    changed: bool

    @property
    def failed(self) -> bool:
        return self.retry_at is None


def stale_tasks(
    backend: DatabaseTaskBackend,
    *,
    older_than: timedelta,
    queue_names: Sequence[str] = (),
    now: datetime,
) -> QuerySet[DatabaseTask]:
    """RUNNING tasks of the backend whose current attempt started more than
    ``older_than`` before ``now``, held by a live worker, a dead one or none
    on record."""
    tasks = DatabaseTask.objects.using(backend.database).filter(
        backend_name=backend.alias,
        status=RUNNING,
        last_attempted_at__lt=now - older_than,
    )
    if queue_names:
        tasks = tasks.filter(queue_name__in=queue_names)
    return among_running(tasks)


def requeue_stale(
    backend: DatabaseTaskBackend,
    *,
    older_than: timedelta,
    queue_names: Sequence[str] = (),
    max_attempts: int | None = None,
    mark_failed: bool = False,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[StaleTask]:
    """Requeue every stale task, reading ``batch_size`` at a time, and return
    them in id order. ``max_attempts`` replaces each task's own for the
    decision; ``mark_failed`` fails them all; ``dry_run`` changes nothing."""
    _check(older_than, max_attempts, batch_size)
    now = now or timezone.now()
    stale = stale_tasks(
        backend, older_than=older_than, queue_names=queue_names, now=now
    ).order_by("pk")
    done: list[StaleTask] = []
    while True:
        # Keyset pagination: a dry run changes nothing, and a task a worker
        # finished meanwhile must not be read again.
        batch = stale.filter(pk__gt=done[-1].id) if done else stale
        rows = batch.values(*FIELDS)[:batch_size]
        if not rows:
            return done
        for row in rows:
            allowed = max_attempts or row["max_attempts"]
            retry_at = None
            if not mark_failed:
                retry_at = next_attempt_at(
                    attempts_used=len(row["worker_ids"]),
                    max_attempts=allowed,
                    retry_backoff=row["retry_backoff"],
                    retry_backoff_max=row["retry_backoff_max"],
                    now=now,
                )
            changed = not dry_run and bool(
                requeue_lost(
                    backend,
                    pk=row["pk"],
                    worker_id=row["worker_id"],
                    retry_at=retry_at,
                    reason=_reason(
                        row["worker_id"], row["last_attempted_at"], older_than
                    ),
                    now=now,
                )
            )
            done.append(
                StaleTask(
                    id=row["pk"],
                    task_path=row["task_path"],
                    queue_name=row["queue_name"],
                    worker_id=row["worker_id"],
                    last_attempted_at=row["last_attempted_at"],
                    attempts_used=len(row["worker_ids"]),
                    max_attempts=allowed,
                    retry_at=retry_at,
                    changed=changed,
                )
            )


def _check(older_than: timedelta, max_attempts: int | None, batch_size: int) -> None:
    if not timedelta(0) < older_than <= MAX_OLDER_THAN:
        raise ValueError(
            f"older_than must be above 0 and at most {MAX_OLDER_THAN.days} days, "
            f"not {older_than}."
        )
    if max_attempts is not None and (
        isinstance(max_attempts, bool)
        or not isinstance(max_attempts, int)
        or max_attempts < 1
    ):
        raise ValueError(
            f"max_attempts must be a whole number of 1 or more, not {max_attempts!r}."
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise ValueError(
            f"batch_size must be between 1 and {MAX_BATCH_SIZE}, not {batch_size!r}."
        )


def _reason(worker_id: str, started: datetime, older_than: timedelta) -> str:
    holder = f"worker {worker_id}" if worker_id else "a worker not on record"
    return (
        f"Requeued as stale: the attempt on {holder} started at "
        f"{started.isoformat(timespec='seconds')}, more than {older_than} earlier."
    )
