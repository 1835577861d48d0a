"""The claim-and-run loop: claim, execute, complete, and wait when nothing is due.

The worker command, the programmatic API, the HTTP endpoints and the admin
all run tasks through a ``Worker``, so every path registers in the worker
registry, heartbeats, and rides out passing database errors the same way.

A continuous worker survives outages: a claim that fails is tried again after
growing pauses, and an outcome that cannot be written is kept in memory and
written (then announced) once the database is back, before anything new is
claimed. It never exits, and never fails a task, because the database blinked.
"""

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from django.db import DatabaseError, close_old_connections, connections
from django.tasks import TaskResult
from django.utils.crypto import get_random_string

from ..backends import DatabaseTaskBackend
from ..models import DatabaseTask
from . import registry, transitions
from .claim import claim_task_by_id, claim_tasks
from .completer import announce, store
from .executor import Outcome, execute
from .heartbeat import Heartbeat
from .transient import Backoff, tolerate
from .waker import Waker

logger = logging.getLogger("django_database_task.worker")


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
        self._unwritten: list[Outcome] = []
        self._backoff = Backoff()
        self._outage_since: float | None = None
        self._claim_uncertain = False

    def stop(self) -> None:
        """Start nothing new; safe to call from a signal handler, any time."""
        self.stopping = True
        self._waker.wake()

    def run(self) -> int:
        """Return the number of tasks run."""
        try:
            with self._registered():
                self._loop()
        except _Interrupted:
            pass  # Stopped while waiting for the database to register.
        return self.processed

    def _loop(self) -> None:
        while self._unwritten or (not self.stopping and not self._reached_max()):
            if self._unwritten:
                self._write_unwritten()
                continue
            rows = self._claim()
            if rows:
                for row in rows:
                    self._run(row)
                continue
            if not self.continuous:
                break
            close_old_connections()
            self._waker.wait(self.interval)

    def run_task(self, task_id: str, *, allow_retry: bool = False) -> TaskResult | None:
        """Run the task ``task_id`` of the backend now, due or not; None if it
        is not runnable. A malformed id raises ValidationError."""
        database = self.backend.database
        with self._registered():
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

    @contextmanager
    def _registered(self) -> Iterator[None]:
        """In the registry, heartbeating, for as long as tasks may run."""
        self._until_available(
            lambda: registry.register(
                self.backend, self.worker_id, queues=self.queue_names
            )
        )
        heartbeat = Heartbeat(self.backend, self.worker_id, queues=self.queue_names)
        heartbeat.start()
        try:
            yield
        finally:
            heartbeat.stop()
            try:
                registry.deregister(self.backend, self.worker_id)
            except DatabaseError as error:
                # The row ages out; the rescuer prunes it.
                logger.warning(
                    "Worker %s could not deregister: %s", self.worker_id, error
                )

    def _reached_max(self) -> bool:
        return bool(self.max_tasks) and self.processed >= self.max_tasks

    def _claim(self) -> list[DatabaseTask]:
        def claim() -> list[DatabaseTask]:
            try:
                return claim_tasks(
                    using=self.backend.database,
                    backend_name=self.backend.alias,
                    worker_id=self.worker_id,
                    queue_names=self.queue_names,
                    limit=1,
                )
            except DatabaseError:
                # The database may have committed a claim whose answer was
                # lost: such a task would be held by this worker but run nowhere.
                self._claim_uncertain = True
                raise

        try:
            if self._claim_uncertain:
                self._until_available(self._release_lost_claims)
            return self._until_available(claim)
        except _Interrupted:
            return []

    def _release_lost_claims(self) -> None:
        released = transitions.release_held(
            self.backend.database,
            self.worker_id,
            keep=[outcome.row.pk for outcome in self._unwritten],
        )
        self._claim_uncertain = False
        if released:
            logger.warning(
                "Worker %s released %d task(s) whose claim it never heard back from.",
                self.worker_id,
                released,
            )

    def _run(self, row: DatabaseTask) -> TaskResult:
        outcome = execute(row, self.backend)
        _discard_broken_connections()
        try:
            result = store(outcome, using=self.backend.database)
        except DatabaseError as error:
            if not self.continuous:
                raise
            self._outage_began("store the outcome of a task", error)
            self._unwritten.append(outcome)
            return outcome.result
        self._finish(outcome, result)
        return result

    def _write_unwritten(self) -> None:
        outcome = self._unwritten[0]
        try:
            result = self._until_available(
                lambda: store(outcome, using=self.backend.database)
            )
        except _Interrupted:
            return
        self._unwritten.pop(0)
        self._finish(outcome, result)

    def _finish(self, outcome: Outcome, result: TaskResult) -> None:
        announce(outcome, sender=type(self.backend))
        self.processed += 1
        if self.on_result is not None:
            self.on_result(result)

    def _until_available[T](self, operation: Callable[[], T]) -> T:
        """Run ``operation``; a continuous worker waits out an outage with
        growing pauses (interrupted, without result, by ``stop()`` unless
        outcomes are still to be written), others raise."""
        while True:
            try:
                result = tolerate(operation, using=self.backend.database)
            except DatabaseError as error:
                if not self.continuous:
                    raise
                self._outage_began("reach the database", error)
                close_old_connections()
                if self.stopping and not self._unwritten:
                    raise _Interrupted from None
                self._waker.wait(self._backoff.next_pause())
                continue
            self._outage_ended()
            return result

    def _outage_began(self, what: str, error: DatabaseError) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning(
                "Worker %s could not %s (%s: %s); waiting for the database, with "
                "growing pauses.",
                self.worker_id,
                what,
                type(error).__name__,
                str(error).strip(),
            )

    def _outage_ended(self) -> None:
        self._backoff.reset()
        if self._outage_since is None:
            return
        logger.warning(
            "Worker %s reached the database again after %.1f s.",
            self.worker_id,
            time.monotonic() - self._outage_since,
        )
        self._outage_since = None


class _Interrupted(Exception):
    """``stop()`` ended a wait for the database."""
