"""Riding out statements that fail for passing reasons.

SQLite answers "database is locked" when a writer waited longer than its busy
timeout, and any database can drop a connection; neither should cost a task
its result or stop a worker.
"""

import logging
import random
import time
from collections.abc import Callable

from django.db import OperationalError, connections

logger = logging.getLogger(__name__)

DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0)


def tolerate[T](operation: Callable[[], T], *, using: str) -> T:
    """Run ``operation``, running it again after an OperationalError with
    growing pauses; the last failure is raised. Retries are logged at DEBUG:
    a failure that lasts is the caller's to report (a worker warns once per
    outage), and a warning per retry would flood the log during one."""
    for delay in DELAYS:
        try:
            return operation()
        except OperationalError as error:
            logger.debug("%s; retrying in %s s.", error, delay)
            connections[using].close_if_unusable_or_obsolete()
            time.sleep(delay)
    return operation()


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
