"""When an idle worker wakes: as soon as a task is enqueued (PostgreSQL's
LISTEN; on SQLite, as soon as the file changes), or when the earliest
delayed task becomes due, whichever comes before its polling interval.

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

SQLite has no notifications, but every process shares the file: a
``DataVersionWatcher`` notices any commit to it within ``period``, and the
worker then looks whether a task is due. MySQL/MariaDB have neither, and
poll.
"""

import logging
import sqlite3
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
    """Seconds to sleep: what is left of ``interval`` after this look, so
    that an idle worker looks every ``interval`` seconds, however long a
    look takes (a reconnection, among others); less if a READY task of
    ``queue_names`` becomes due sooner; 0 if one is due."""
    started = time.monotonic()
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
        return max(interval - (time.monotonic() - started), 1e-3)
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
) -> "Listener | DataVersionWatcher | None":
    """What wakes an idle worker; None with ``LISTEN`` off, on MySQL/MariaDB,
    and on an in-memory SQLite database, which no other process can write."""
    if not backend.listen:
        return None
    connection = connections[backend.database]
    dialect = dialect_for(connection)
    if isinstance(dialect, PostgreSQL):
        return Listener(backend, dialect, queue_names, worker_id)
    if connection.vendor == "sqlite" and not connection.is_in_memory_db():
        return DataVersionWatcher(str(connection.settings_dict["NAME"]))
    return None


class DataVersionWatcher:
    """``PRAGMA data_version``, read on a connection of the watcher's own,
    changes whenever another connection commits to the file: an enqueue
    from any process, among other writes. Reading it is a look at the file's
    header, with no statement on the task table, so the worker reads it
    every ``period`` seconds while idle; a change ends its wait, and it then
    looks whether a task is due (one indexed read) before claiming."""

    period = 0.05
    # A change says that something was written, not that a task is due.
    means_work = False

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._version: int | None = None

    def fileno(self) -> None:
        return None

    def drain(self) -> bool:
        """True when another connection committed since the last look, and
        on the first look, which has nothing to compare with."""
        try:
            if self._connection is None:
                # As Django opens it: a name starting "file:" is a URI.
                self._connection = sqlite3.connect(self.path, timeout=0, uri=True)
            [version] = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            # Busy (a writer, in rollback-journal mode): the worker polls
            # meanwhile, and the next look tries again.
            return False
        changed = version != self._version
        self._version = version
        return changed

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._version = None


class Listener:
    """One LISTEN connection, made on the first ``drain`` and remade after
    a failure; reading it never blocks."""

    # No need to look more often: the socket says when to.
    period = None
    # A notification names a queue that has work.
    means_work = True

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
