"""The worker loop: claim, execute, complete, and wait when there is nothing due.

Each part has one job and lives in its own module (``claim``, ``executor``,
``completer``); this module only drives them and owns the stop/wake state.
"""

import logging
import os
import select
import socket
from collections.abc import Callable, Sequence
from contextlib import suppress

from django.db import DatabaseError, close_old_connections, connections
from django.tasks import TaskResult
from django.utils.crypto import get_random_string

from .backends import DatabaseTaskBackend
from .claim import claim_tasks
from .completer import complete
from .executor import execute
from .models import DatabaseTask
from .retry import retry_transient

logger = logging.getLogger(__name__)


def make_worker_id() -> str:
    """Host, process and a random suffix: unique, and says where a task ran."""
    return f"{socket.gethostname()}:{os.getpid()}:{get_random_string(6)}"


def run_claimed(backend: DatabaseTaskBackend, row: DatabaseTask) -> TaskResult:
    """Execute a task this process has claimed and store its outcome."""
    outcome = execute(row, backend)
    _discard_broken_connections()
    return complete(outcome, using=backend.database, sender=type(backend))


def _discard_broken_connections() -> None:
    """A task may leave a connection broken; drop it so the next query
    reconnects, without closing healthy ones between tasks."""
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()


class Waker:
    """An idle wait that a signal handler can end at once (a self-pipe)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def wait(self, timeout: float) -> None:
        readable, _, _ = select.select([self._read], [], [], timeout)
        if readable:
            with suppress(BlockingIOError):
                while os.read(self._read, 512):
                    pass

    def wake(self) -> None:
        # A full pipe means the waiter wakes anyway.
        with suppress(BlockingIOError):
            os.write(self._write, b"\0")

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class Worker:
    """Runs tasks of one backend until the queue is empty, ``max_tasks`` were
    run, or ``stop()`` is called; with ``continuous`` it waits for more work
    instead of returning when the queue is empty."""

    def __init__(
        self,
        backend: DatabaseTaskBackend,
        *,
        queue_names: Sequence[str] = (),
        continuous: bool = False,
        interval: float = 5.0,
        max_tasks: int = 0,
        worker_id: str | None = None,
        on_result: Callable[[TaskResult], None] | None = None,
    ) -> None:
        self.backend = backend
        self.queue_names = tuple(queue_names)
        self.continuous = continuous
        self.interval = interval
        self.max_tasks = max_tasks
        self.worker_id = worker_id or make_worker_id()
        self.on_result = on_result
        self.stopping = False
        self.processed = 0
        self._waker = Waker()

    def stop(self) -> None:
        """Start nothing new; safe to call from a signal handler."""
        self.stopping = True
        self._waker.wake()

    def run(self) -> int:
        """Return the number of tasks run."""
        try:
            while not self.stopping and not self._reached_max():
                rows = self._claim()
                if rows:
                    for row in rows:
                        self._run(row)
                    continue
                if not self.continuous:
                    break
                close_old_connections()
                self._waker.wait(self.interval)
        finally:
            self._waker.close()
        return self.processed

    def _reached_max(self) -> bool:
        return bool(self.max_tasks) and self.processed >= self.max_tasks

    def _claim(self) -> list[DatabaseTask]:
        def claim() -> list[DatabaseTask]:
            return claim_tasks(
                using=self.backend.database,
                backend_name=self.backend.alias,
                worker_id=self.worker_id,
                queue_names=self.queue_names,
                limit=1,
            )

        try:
            return retry_transient(claim, using=self.backend.database)
        except DatabaseError:
            if not self.continuous:
                raise
            logger.exception("Claiming failed; trying again in %s s.", self.interval)
            close_old_connections()
            return []

    def _run(self, row: DatabaseTask) -> None:
        result = run_claimed(self.backend, row)
        self.processed += 1
        if self.on_result is not None:
            self.on_result(result)
