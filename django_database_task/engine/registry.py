"""The worker registry: who is running, and since when they were last heard.

A worker registers when it starts, heartbeats while it runs (from its own
thread, so a long task never silences it) and deregisters when it stops. A
worker that stopped heartbeating is dead: ``maintenance.rescuer`` frees its
tasks and prunes its row.
"""

import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError
from django.db.models import QuerySet
from django.utils import timezone

from ..backends import DatabaseTaskBackend
from ..models import DatabaseTaskWorker, WorkerState

# A heartbeat this old marks a worker dead at once.
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def register(
    backend: DatabaseTaskBackend,
    worker_id: str,
    *,
    queues: Sequence[str] = (),
    concurrency: int = 1,
    keeps_started: bool = False,
) -> None:
    """Add the worker: one INSERT, no transaction, so that SQLite writers
    never deadlock upgrading a read lock. Worker ids are unique and only the
    worker itself adds its row, so a duplicate key means an earlier INSERT
    committed though its answer was lost (an outage): the worker is in.
    ``keeps_started``: the worker writes what it starts (``record_started``)
    before starting it; it has started nothing yet."""
    now = timezone.now()
    try:
        DatabaseTaskWorker.objects.using(backend.database).create(
            pk=worker_id,
            backend_name=backend.alias,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=list(queues),
            concurrency=concurrency,
            state=WorkerState.RUNNING,
            started_at=now,
            last_heartbeat_at=now,
            started_task_ids=[] if keeps_started else None,
        )
    except IntegrityError:
        beat(backend, worker_id)


def beat(backend: DatabaseTaskBackend, worker_id: str) -> bool:
    """Record a heartbeat; False if the row is gone (pruned while this worker
    was cut off), so that the caller registers again."""
    return bool(
        DatabaseTaskWorker.objects.using(backend.database)
        .filter(pk=worker_id)
        .update(last_heartbeat_at=timezone.now())
    )


def record_started(
    backend: DatabaseTaskBackend, worker_id: str, task_ids: Sequence
) -> None:
    """The tasks the worker may have started and not yet stored: any other
    task it holds was never started (see ``maintenance.rescuer``)."""
    DatabaseTaskWorker.objects.using(backend.database).filter(pk=worker_id).update(
        started_task_ids=[str(task_id) for task_id in task_ids]
    )


def set_state(backend: DatabaseTaskBackend, worker_id: str, state: str) -> None:
    DatabaseTaskWorker.objects.using(backend.database).filter(pk=worker_id).update(
        state=state
    )


def deregister(backend: DatabaseTaskBackend, worker_id: str) -> None:
    DatabaseTaskWorker.objects.using(backend.database).filter(pk=worker_id).delete()


def abandon(backend: DatabaseTaskBackend, worker_id: str) -> None:
    """Leave the registry as a dead worker, so that the tasks it could not
    finish are rescued at the next heartbeat of any live worker."""
    DatabaseTaskWorker.objects.using(backend.database).filter(pk=worker_id).update(
        last_heartbeat_at=LONG_AGO
    )


def live_workers(
    backend: DatabaseTaskBackend, now: datetime | None = None
) -> QuerySet[DatabaseTaskWorker]:
    """Workers of the backend heard from within its rescue threshold."""
    cutoff = (now or timezone.now()) - timedelta(seconds=backend.rescue_after)
    return DatabaseTaskWorker.objects.using(backend.database).filter(
        backend_name=backend.alias, last_heartbeat_at__gte=cutoff
    )
