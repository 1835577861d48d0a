"""Riding out statements that fail for passing reasons.

SQLite answers "database is locked" when a writer waited longer than its busy
timeout, and any database can drop a connection; neither should cost a task
its result or stop a worker.
"""

import logging
import random
import time
from collections.abc import Callable

from django.db import (
    DatabaseError,
    OperationalError,
    close_old_connections,
    connections,
)

from .waker import Waker

logger = logging.getLogger(__name__)
# Outages are the worker's to report.
worker_logger = logging.getLogger("django_database_task.worker")

DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0)


def tolerate[T](operation: Callable[[], T], *, using: str) -> T:
    """Run ``operation``, running it again after an OperationalError with
    growing pauses; the last failure is raised. Retries are logged at DEBUG:
    a failure that lasts is the caller's to report (a worker warns once per
    outage), and a warning per retry would flood the log during one. After
    every failure, the last included, a connection the failure left unfit
    is closed, so that whatever runs next starts afresh."""
    for delay in DELAYS:
        try:
            return operation()
        except OperationalError as error:
            logger.debug("%s; retrying in %s s.", error, delay)
            connections[using].close_if_unusable_or_obsolete()
            time.sleep(delay)
    try:
        return operation()
    except OperationalError:
        connections[using].close_if_unusable_or_obsolete()
        raise


def close_broken_connections() -> None:
    """Close this thread's connections left out of autocommit with no atomic
    block open, keeping every other one open whatever ``CONN_MAX_AGE`` says.
    A commit or rollback whose database went away leaves that state behind
    (Django's atomic() could not switch autocommit back on); the next atomic
    block would take the open transaction for its own and never commit, or,
    the connection being dead, stay broken for good."""
    for connection in connections.all(initialized_only=True):
        if (
            connection.connection is not None
            and not connection.in_atomic_block
            and connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]
        ):
            connection.close()


class Backoff:
    """Growing pauses for a worker waiting out an outage: doubling from
    ``first`` up to ``cap`` seconds, each jittered so that many workers do not
    reconnect in step."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next_pause(self) -> float:
        ceiling = min(self.cap, self.first * 2 ** min(self.failures, 32))
        self.failures += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


class Interrupted(Exception):
    """Waiting for the database was given up (the worker is stopping)."""


class Outage:
    """A continuous worker's dealings with an unreachable database: one
    warning when an outage begins and one when it ends, growing pauses
    between tries, waits that a wake-up (``stop()``) can cut short. When not
    ``enabled`` (a one-off run from the API), errors are raised at once."""

    def __init__(self, worker_id: str, waker: Waker, *, enabled: bool) -> None:
        self.worker_id = worker_id
        self.waker = waker
        self.enabled = enabled
        self.backoff = Backoff()
        self.since: float | None = None

    def until_available[T](
        self,
        operation: Callable[[], T],
        *,
        using: str,
        give_up: Callable[[], bool] = lambda: False,
    ) -> T:
        """Run ``operation`` until the database lets it through; Interrupted
        when ``give_up()`` says so during an outage."""
        while True:
            try:
                result = tolerate(operation, using=using)
            except DatabaseError as error:
                if not self.enabled:
                    raise
                self.began("reach the database", error)
                close_old_connections()
                if give_up():
                    raise Interrupted from None
                self.waker.wait(self.backoff.next_pause())
                continue
            self.ended()
            return result

    def began(self, what: str, error: DatabaseError) -> None:
        if self.since is not None:
            return
        self.since = time.monotonic()
        worker_logger.warning(
            "Worker %s could not %s (%s: %s); waiting for the database, with "
            "growing pauses.",
            self.worker_id,
            what,
            type(error).__name__,
            str(error).strip(),
        )

    def ended(self) -> None:
        self.backoff.reset()
        if self.since is None:
            return
        worker_logger.warning(
            "Worker %s reached the database again after %.1f s.",
            self.worker_id,
            time.monotonic() - self.since,
        )
        self.since = None
