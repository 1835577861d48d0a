"""When an idle worker wakes: as soon as a task is enqueued (PostgreSQL's
LISTEN), or when the earliest delayed task becomes due, whichever comes
before its polling interval.

On PostgreSQL an enqueue NOTIFYs the backend's channel with the queue name
when its transaction commits (``backends``). Each continuous worker keeps
one psycopg connection of its own, in autocommit, LISTENing on that channel:
not Django's connection, which may go through a transaction-pooling
PgBouncer where a session's LISTEN is lost (``LISTEN_DATABASE`` names a
direct alias). The worker waits on its socket beside its waker and asks
``drain`` whether to claim.

Polling stays the safety net: while the connection cannot be made, or once
it drops, the worker polls at its interval; the listener says so once in the
log and tries again after growing pauses.
"""

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from django.utils import timezone

from ..backends import DatabaseTaskBackend
from ..models import DatabaseTask
from ..sql import PostgreSQL, dialect_for
from .transient import Backoff

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger("django_database_task.worker")


def until_due(
    backend: DatabaseTaskBackend, queue_names: Sequence[str], interval: float
) -> float:
    """Seconds to sleep: ``interval``, or less if a READY task of
    ``queue_names`` becomes due sooner; 0 if one is due."""
    try:
        due = next_due(
            using=backend.database,
            backend_name=backend.alias,
            queue_names=queue_names,
            before=timezone.now() + timedelta(seconds=interval),
        )
    except DatabaseError:
        return interval  # The claim deals with outages.
    if due is None:
        return interval
    seconds = (due - timezone.now()).total_seconds()
    # Just past the due time when sleeping until it; 0 when it has come.
    return seconds + 0.005 if seconds > 0 else 0.0


def next_due(
    *, using: str, backend_name: str, queue_names: Sequence[str], before: datetime
) -> datetime | None:
    """When the earliest READY task of ``queue_names`` (all: empty) is due,
    if that is before ``before``."""
    connection = connections[using]
    statement = dialect_for(connection).next_due_statement(
        backend_name=backend_name,
        queue_names=queue_names,
        before=connection.ops.adapt_datetimefield_value(before),
    )
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        [value] = cursor.fetchone()
    column = DatabaseTask._meta.get_field("due_at").get_col(DatabaseTask._meta.db_table)
    for convert in connection.ops.get_db_converters(column):
        value = convert(value, column, connection)
    return value


def for_worker(
    backend: DatabaseTaskBackend, queue_names: Sequence[str], worker_id: str
) -> "Listener | None":
    """The listener of a worker; None with ``LISTEN`` off or a database
    other than PostgreSQL, where enqueueing notifies no one."""
    if not backend.listen:
        return None
    dialect = dialect_for(connections[backend.database])
    if not isinstance(dialect, PostgreSQL):
        return None
    return Listener(backend, dialect, queue_names, worker_id)


class Listener:
    """One LISTEN connection, made on the first ``drain`` and remade after
    a failure; reading it never blocks."""

    def __init__(
        self,
        backend: DatabaseTaskBackend,
        dialect: PostgreSQL,
        queue_names: Sequence[str],
        worker_id: str,
    ) -> None:
        self.database = backend.listen_database
        self.listen = dialect.listen_statement(backend.channel)
        self.queue_names = frozenset(queue_names)
        self.worker_id = worker_id
        self._connection: psycopg.Connection | None = None
        self._backoff = Backoff(first=1.0, cap=60.0)
        self._retry_at = 0.0
        self._failing = False

    def fileno(self) -> int | None:
        """The socket to wait on; None while not listening."""
        return None if self._connection is None else self._connection.fileno()

    def drain(self) -> bool:
        """Read what has arrived; True when the worker should claim: a
        notification for a queue it serves, or a connection just made or
        lost (what was enqueued meanwhile went unheard)."""
        if self._connection is None:
            return self._connect()
        import psycopg

        try:
            queues = [notify.payload for notify in self._connection.notifies(timeout=0)]
        except psycopg.Error as error:
            self._lost(error)
            return True
        return any(not self.queue_names or q in self.queue_names for q in queues)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        import psycopg

        try:
            params = connections[self.database].get_connection_params()
            params.setdefault("connect_timeout", 5)
            self._connection = psycopg.connect(**params, autocommit=True)
            self._connection.execute(self.listen)
        except (psycopg.Error, ImproperlyConfigured) as error:
            self._lost(error)
            return False
        self._backoff.reset()
        if self._failing:
            logger.warning("Worker %s listens for new tasks again.", self.worker_id)
            self._failing = False
        return True

    def _lost(self, error: Exception) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._retry_at = time.monotonic() + self._backoff.next_pause()
        if not self._failing:
            logger.warning(
                "Worker %s cannot LISTEN on database %r (%s: %s); it polls "
                "meanwhile and tries again with growing pauses.",
                self.worker_id,
                self.database,
                type(error).__name__,
                str(error).strip(),
            )
            self._failing = True
