"""The claim-and-run loop: claim, execute, complete, and wait when nothing is due.

The worker command, the programmatic API, the HTTP endpoints and the admin
all run tasks through a ``Worker``, so every path registers in the worker
registry, heartbeats, and rides out passing database errors the same way.

The ``Producer`` claims for the free slots plus a short prefetch; with
``concurrency`` above 1 a ``ConcurrentPool`` runs the tasks. Outcomes are
stored from the worker's own thread, in batches: those that finish within
``FLUSH_AFTER`` of each other are written together, and at the latest when
nothing else is left to do. A continuous worker survives outages: a claim that
fails is tried again after growing pauses (``transient.Outage``), and an
outcome that cannot be written is kept in memory and written (then
announced) once the database is back, before anything new is claimed.

On ``stop()`` nothing new is claimed and running tasks get
``shutdown_timeout`` seconds to finish. A worker that leaves tasks unfinished
(that timeout, or an interrupt) marks itself dead in the registry, so that
the next heartbeat of any live worker rescues them.
"""

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from functools import partial

from django.db import DatabaseError, close_old_connections
from django.tasks import TaskResult

from ..backends import DatabaseTaskBackend
from ..models import DatabaseTask
from . import events, listener, membership, registry
from .claim import claim_task_by_id
from .completer import announce, store, store_all
from .executor import Outcome, run, start
from .pool import ConcurrentPool, InlinePool
from .producer import MAX_CLAIM, MIN_PAUSE, Producer
from .transient import Interrupted, Outage, tolerate
from .waker import Waker

logger = logging.getLogger("django_database_task.worker")

# Finished outcomes wait at most this long (seconds) to be stored together.
FLUSH_AFTER = 0.005


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
        concurrency: int = 1,
        shutdown_timeout: float = 30.0,
        worker_id: str | None = None,
        on_result: Callable[[TaskResult], None] | None = None,
    ) -> None:
        self.backend = backend
        self.queue_names = tuple(queue_names)
        self.continuous = continuous
        self.interval = interval
        self.max_tasks = max_tasks
        self.concurrency = concurrency
        self.shutdown_timeout = shutdown_timeout
        self.worker_id = worker_id or registry.make_worker_id()
        self.on_result = on_result
        self.stopping = False
        self.processed = 0
        self._waker = Waker()
        self._pool: InlinePool | ConcurrentPool = (
            ConcurrentPool(concurrency, on_done=self._waker.wake)
            if concurrency > 1
            else InlinePool()
        )
        self._pending: list[Outcome] = []
        self._pending_since = 0.0
        # Set when a task failed on a database error: flush without waiting.
        self._flush_now = False
        self._unwritten: list[Outcome] = []
        self._outage = Outage(self.worker_id, self._waker, enabled=continuous)
        self._producer = Producer(
            backend,
            self.worker_id,
            self.queue_names,
            self._outage,
            give_up=lambda: self.stopping,
        )
        self._notified = False
        self._in_flight: DatabaseTask | None = None
        self._listener = (
            listener.for_worker(backend, self.queue_names, self.worker_id)
            if continuous
            else None
        )

    def stop(self) -> None:
        """Start nothing new; safe to call from a signal handler, any time."""
        self.stopping = True
        self._waker.wake()

    def run(self) -> int:
        """Return the number of tasks run."""
        try:
            with self._registered(keeps_started=True):
                self._loop()
        except Interrupted:
            pass  # Stopped while waiting for the database to register.
        finally:
            # Ends the slot threads (closing their connections) and the loop.
            self._pool.close(timeout=0)
            if self._listener is not None:
                self._listener.close()
        return self.processed

    def run_task(self, task_id: str, *, allow_retry: bool = False) -> TaskResult | None:
        """Run the task ``task_id`` of the backend now, due or not, in this
        thread; None if it is not runnable. A malformed id raises
        ValidationError."""
        database = self.backend.database
        with self._registered(keeps_started=False):
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
            if row is None:
                return None
            self._in_flight = row
            attempt = start(row, self.backend)
            events.started(attempt.result, self.worker_id)
            outcome = run(attempt)
            result = store(outcome, using=database)
            self._in_flight = None
            self._finish(outcome, result)
            return result

    def _loop(self) -> None:
        while True:
            self._collect()
            if self._unwritten:
                self._write_unwritten()
                continue
            if self.stopping or self._reached_max():
                self._producer.release()
                if self._pool.busy:
                    self._wait_for_running()
                    continue
                self._flush()
                if self._idle():
                    return
                continue
            if self._pending and self._flush_due():
                self._flush()
                continue
            if self._start_claimed():
                continue
            free = min(self._free_slots(), self._left())
            if free and self._claim(free):
                continue
            if not self.continuous and self._idle():
                return
            self._wait(self._pause(free))

    def _start_claimed(self) -> bool:
        """Hand claimed tasks to the free slots (inline: run one)."""
        started = False
        producer = self._producer
        while producer.claimed and self._free_slots():
            if not producer.startable and not self._record_starts():
                # Its write failed (the outcomes wait in _unwritten) or the
                # worker stops: the loop sees to either first.
                return True
            row = producer.take()
            self._in_flight = row
            attempt = start(row, self.backend)
            events.started(attempt.result, self.worker_id)
            self._pool.submit(attempt)
            self._in_flight = None
            started = True
            if not self._pool.busy:
                break  # Inline: let the loop flush in time.
        return started

    def _record_starts(self) -> bool:
        """Name the next claimed tasks in the started list, with the pending
        outcomes if any; False when none may start yet."""
        if self._pending:
            self._flush()
        elif starts := self._starts():
            self._producer.record_starts(*starts)
        return self._producer.startable > 0

    def _starts(self) -> tuple[list, int] | None:
        return self._producer.starts(
            held=self._held_elsewhere,
            free=self._free_slots(),
            concurrency=self._pool.concurrency,
            window=FLUSH_AFTER,
        )

    def _claim(self, free: int) -> bool:
        """Claim for the free slots and the prefetch. After a claim that
        found nothing, a continuous worker claims only once a task is due,
        and waits until then. False when neither happened."""
        producer = self._producer
        wanted = producer.wanted(
            free=free, concurrency=self._pool.concurrency, left=self._left()
        )
        if not wanted:
            return False
        if (
            self.continuous
            and producer.found_nothing
            and not self._notified
            and (seconds := producer.seconds_until_due(self.interval)) > 0
        ):
            self._wait(seconds)
            return True
        self._notified = False
        return bool(producer.claim(wanted, keep=self._held_elsewhere))

    def _pause(self, free: int) -> float:
        """How long to wait: until a pending outcome must be flushed, or a
        task comes due, or the polling interval."""
        if self._pending:
            return max(0.0, self._pending_since + FLUSH_AFTER - time.monotonic())
        if free and self._producer.found_nothing:
            return max(MIN_PAUSE, self._producer.seconds_until_due(self.interval))
        return self.interval

    def _wait(self, timeout: float) -> None:
        """Up to ``timeout`` seconds; stop(), a finished task, a notification
        for a served queue or (SQLite) a write to the file end it sooner."""
        if not self._pool.busy:
            close_old_connections()
        deadline = time.monotonic() + timeout
        listener = self._listener
        while (left := deadline - time.monotonic()) > 0:
            if listener is None:
                self._waker.wait(left)
                return
            if listener.drain():
                self._notified = listener.means_work
                return
            fd = listener.fileno()
            step = left if listener.period is None else min(left, listener.period)
            readable = self._waker.wait(step, watch=[] if fd is None else [fd])
            if self._waker.woken or self.stopping or self._pool.busy:
                return
            if not readable and listener.period is None:
                return

    def _idle(self) -> bool:
        """Nothing running or claimed, and every outcome stored (one may
        have finished since the last look)."""
        if self._pool.busy or self._producer.claimed:
            return False
        self._collect()
        self._flush()
        return not self._unwritten and not self._pending

    def _free_slots(self) -> int:
        return self._pool.concurrency - self._pool.busy

    def _left(self) -> int:
        """How many more tasks may be claimed under ``max_tasks``."""
        if not self.max_tasks:
            return MAX_CLAIM
        in_hand = (
            len(self._producer.claimed)
            + self._pool.busy
            + len(self._pending)
            + len(self._unwritten)
        )
        return self.max_tasks - self.processed - in_hand

    def _reached_max(self) -> bool:
        return bool(self.max_tasks) and self.processed >= self.max_tasks

    def _wait_for_running(self) -> None:
        """Stopping: give running tasks ``shutdown_timeout`` seconds, then
        leave them to the rescue."""
        assert isinstance(self._pool, ConcurrentPool)
        if not self._pool.close(self.shutdown_timeout):
            logger.warning(
                "Worker %s stops with %d task(s) still running after the %g s "
                "shutdown timeout; they are rescued like a crashed worker's.",
                self.worker_id,
                self._pool.busy,
                self.shutdown_timeout,
            )
            raise membership.Abandoned
        self._collect()

    def _registered(self, *, keeps_started: bool) -> AbstractContextManager:
        return membership.registered(
            self.backend,
            self.worker_id,
            queues=self.queue_names,
            concurrency=self.concurrency,
            keeps_started=keeps_started,
            outage=self._outage,
            give_up=lambda: self.stopping,
            unfinished=lambda: bool(
                self._in_flight
                or self._pool.busy
                or self._pending
                or self._unwritten
                or self._producer.claimed
            ),
        )

    def _held_elsewhere(self) -> list:
        """Tasks this worker holds outside the producer: started, not stored."""
        held = [outcome.row.pk for outcome in self._unwritten + self._pending]
        return held + self._pool.started()

    def _collect(self) -> None:
        """Take finished outcomes to be stored in the next flush."""
        done = self._pool.take_done()
        if not done:
            return
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.extend(done)
        for outcome in done:
            self._producer.observe(outcome.seconds)
            if isinstance(outcome.exception, DatabaseError):
                self._flush_now = True

    def _flush_due(self) -> bool:
        """Also at once after a task failed on a database error: the
        database may be gone, and the claimed tasks should wait for it
        rather than fail one after another."""
        return (
            not (self._producer.claimed or self._pool.busy)
            or len(self._pending) >= MAX_CLAIM
            or time.monotonic() - self._pending_since >= FLUSH_AFTER
            or self._flush_now
        )

    def _flush(self) -> None:
        """Store the pending outcomes in one transaction, with the started
        list when more claimed tasks should start, then announce them."""
        done, self._pending = self._pending, []
        self._flush_now = False
        if not done:
            return
        starts = self._starts()
        record = None
        if starts is not None:
            record = partial(
                registry.record_started, self.backend, self.worker_id, starts[0]
            )
        try:
            results = store_all(done, using=self.backend.database, then=record)
        except DatabaseError as error:
            if not self.continuous:
                raise
            self._outage.began("store the outcome of a task", error)
            self._unwritten.extend(done)
            return
        if starts:
            self._producer.startable = starts[1]
        for outcome, result in zip(done, results, strict=True):
            self._finish(outcome, result)

    def _write_unwritten(self) -> None:
        """Once the database is back, the outcomes it missed, in one batch."""
        outcomes = self._unwritten
        try:
            results = self._outage.until_available(
                lambda: store_all(outcomes, using=self.backend.database),
                using=self.backend.database,
            )
        except Interrupted:
            return
        self._unwritten = []
        for outcome, result in zip(outcomes, results, strict=True):
            self._finish(outcome, result)

    def _finish(self, outcome: Outcome, result: TaskResult) -> None:
        announce(outcome, sender=type(self.backend))
        events.finished(result, self.worker_id, outcome.exception)
        self.processed += 1
        if self.on_result is not None:
            self.on_result(result)
