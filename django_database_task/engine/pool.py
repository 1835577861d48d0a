"""Where attempts run: in the worker's own thread, or in slots beside it.

``InlinePool`` (concurrency 1, the default) runs each attempt in the calling
thread, as Django's ImmediateBackend does, so a task sees the caller's
database connection and transaction. ``ConcurrentPool`` runs up to N at once:
sync tasks in threads, each with its own database connection (closed when
the task is done, as a request's is), async tasks together on one event loop.
Finished outcomes wait in ``done`` for the worker's thread to store them.
"""

import asyncio
import queue
import threading
import time
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

from .executor import Attempt, Outcome, arun, run
from .transient import close_broken_connections


class InlinePool:
    concurrency = 1

    def __init__(self) -> None:
        self.done: list[Outcome] = []

    @property
    def busy(self) -> int:
        return 0

    def submit(self, attempt: Attempt) -> None:
        self.done.append(timed_run(attempt))
        # The worker writes next on the connection the task used.
        close_broken_connections()

    def take_done(self) -> list[Outcome]:
        done, self.done = self.done, []
        return done

    def started(self) -> list:
        """Primary keys of the tasks running or done and not yet taken."""
        return [outcome.row.pk for outcome in self.done]

    def close(self, timeout: float | None = None) -> bool:
        return True


class ConcurrentPool:
    def __init__(self, concurrency: int, on_done: Callable[[], None]) -> None:
        self.concurrency = concurrency
        self._on_done = on_done
        self._lock = threading.Lock()
        self._running: dict[int, Attempt] = {}
        self._done: list[Outcome] = []
        self._idle = threading.Condition(self._lock)
        self._sync: queue.SimpleQueue[Attempt | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    def started(self) -> list:
        """Primary keys of the tasks running or done and not yet taken, read
        at one moment: a task between the two is in one or the other."""
        with self._lock:
            attempts = list(self._running.values())
            return [a.row.pk for a in attempts] + [o.row.pk for o in self._done]

    def submit(self, attempt: Attempt) -> None:
        with self._lock:
            self._running[id(attempt)] = attempt
        if attempt.is_async:
            asyncio.run_coroutine_threadsafe(self._arun(attempt), self._event_loop())
        else:
            self._start_thread_if_needed()
            self._sync.put(attempt)

    def take_done(self) -> list[Outcome]:
        with self._lock:
            done, self._done = self._done, []
        return done

    def close(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for running attempts; True when
        none is left. Threads and the loop end either way."""
        with self._lock:
            finished = self._idle.wait_for(lambda: not self._running, timeout)
        for _ in self._threads:
            self._sync.put(None)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if finished:
            for thread in self._threads:
                thread.join()
            if self._loop_thread is not None:
                self._loop_thread.join()
        return finished

    def _finish(self, attempt: Attempt, outcome: Outcome) -> None:
        with self._lock:
            self._running.pop(id(attempt), None)
            self._done.append(outcome)
            self._idle.notify_all()
        self._on_done()

    def _start_thread_if_needed(self) -> None:
        # Threads start as sync work arrives, up to the concurrency: a worker
        # of async tasks keeps none.
        with self._lock:
            if len(self._threads) < min(self.concurrency, len(self._running)):
                thread = threading.Thread(
                    target=self._serve, name="task slot", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _serve(self) -> None:
        try:
            while (attempt := self._sync.get()) is not None:
                outcome = timed_run(attempt)
                close_old_connections()
                self._finish(attempt, outcome)
        finally:
            connections.close_all()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(
                target=self._run_loop, args=(loop,), name="task loop", daemon=True
            )
            self._loop = loop
            self._loop_thread.start()
        return self._loop

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            connections.close_all()

    async def _arun(self, attempt: Attempt) -> None:
        started = time.perf_counter()
        outcome = await arun(attempt)
        outcome.seconds = time.perf_counter() - started
        if outcome.exception is not None:
            # Where the task's queries ran (sync_to_async's thread): one that
            # a failed commit left broken must not serve the next task.
            await sync_to_async(close_broken_connections)()
        self._finish(attempt, outcome)


def timed_run(attempt: Attempt) -> Outcome:
    started = time.perf_counter()
    outcome = run(attempt)
    outcome.seconds = time.perf_counter() - started
    return outcome
