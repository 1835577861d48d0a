"""The claim-and-run loop: claim, execute, complete, and wait when nothing is due.

The worker command, the programmatic API, the HTTP endpoints and the admin
all run tasks through a ``Worker``, so every path has the same transient-error
handling and one worker id per run.
"""

import logging
import os
import socket
from collections.abc import Callable, Sequence

from django.db import DatabaseError, close_old_connections, connections
from django.tasks import TaskResult
from django.utils.crypto import get_random_string

from ..backends import DatabaseTaskBackend
from ..models import DatabaseTask
from .claim import claim_task_by_id, claim_tasks
from .completer import complete
from .executor import execute
from .transient import tolerate
from .waker import Waker

logger = logging.getLogger(__name__)


def make_worker_id() -> str:
    """Host, process and a random suffix: unique, and says where a task ran."""
    return f"{socket.gethostname()}:{os.getpid()}:{get_random_string(6)}"


def _discard_broken_connections() -> None:
    """A task may leave a connection broken; drop it so the next query
    reconnects, without closing healthy ones between tasks."""
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()


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
        """Start nothing new; safe to call from a signal handler, any time."""
        self.stopping = True
        self._waker.wake()

    def run(self) -> int:
        """Return the number of tasks run."""
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
        return self.processed

    def run_task(self, task_id: str, *, allow_retry: bool = False) -> TaskResult | None:
        """Run the task ``task_id`` of the backend now, due or not; None if it
        is not runnable. A malformed id raises ValidationError."""
        database = self.backend.database
        row = tolerate(
            lambda: claim_task_by_id(
                using=database,
                task_id=task_id,
                backend_name=self.backend.alias,
                worker_id=self.worker_id,
                allow_retry=allow_retry,
            ),
            using=database,
        )
        return self._run(row) if row is not None else None

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
            return tolerate(claim, using=self.backend.database)
        except DatabaseError:
            if not self.continuous:
                raise
            logger.exception("Claiming failed; trying again in %s s.", self.interval)
            close_old_connections()
            return []

    def _run(self, row: DatabaseTask) -> TaskResult:
        outcome = execute(row, self.backend)
        _discard_broken_connections()
        result = complete(
            outcome, using=self.backend.database, sender=type(self.backend)
        )
        self.processed += 1
        if self.on_result is not None:
            self.on_result(result)
        return result
