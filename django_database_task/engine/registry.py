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

from django.db import IntegrityError, connections
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import get_random_string

from ..backends import DatabaseTaskBackend
from ..models import DatabaseTaskWorker, WorkerState

# A heartbeat this old marks a worker dead at once.
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
_STARTED = DatabaseTaskWorker._meta.get_field("started_task_ids")


def make_worker_id() -> str:
    """Host, process and a random suffix: unique, and says where a task ran."""
    return f"{socket.gethostname()}:{os.getpid()}:{get_random_string(6)}"


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
    task it holds was never started (see ``maintenance.rescuer``). Written
    on the hot path, so as one plain statement, with no query to compile."""
    connection = connections[backend.database]
    quote = connection.ops.quote_name
    value = _STARTED.get_db_prep_save([str(pk) for pk in task_ids], connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(DatabaseTaskWorker._meta.db_table)} "
            f"SET {quote(_STARTED.column)} = %s WHERE {quote('id')} = %s",
            [value, worker_id],
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
