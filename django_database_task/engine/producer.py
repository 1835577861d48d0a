"""Claiming work for a worker: batches sized to its free slots plus a short
prefetch, held in memory until a slot takes them.

The prefetch is what lets one worker run many short tasks per claim: the
producer claims as many tasks as the worker is expected to finish within
``PREFETCH_WINDOW`` seconds, judged from how long its recent tasks took, so
a claimed task never waits long in memory. Slow tasks get no prefetch at
all. Claimed tasks are RUNNING and held by the worker from the moment they
are claimed: if the worker dies they are rescued with it; on a graceful stop
those it never started are released at once, their claim not counted as an
attempt. A crash does not cost them an attempt either: the worker starts
only the first ``startable`` of them, those named in its started list
(``registry.record_started``), which it writes before it starts them.

After a claim that found nothing, the producer first asks when the next task
is due (one indexed read) and claims only once something is, or when a
notification or a wake-up says there may be work.
"""

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice

from django.db import DatabaseError

from ..backends import DatabaseTaskBackend
from ..models import DatabaseTask
from . import listener, registry, transitions
from .claim import claim_tasks
from .transient import Interrupted, Outage

logger = logging.getLogger("django_database_task.worker")

# Seconds of work a worker claims ahead of its free slots.
PREFETCH_WINDOW = 0.05
# The most tasks one claim asks for.
MAX_CLAIM = 100
# Weight of the latest task in the running average of task durations.
_SMOOTHING = 0.2
# The shortest pause after a claim that found nothing although a task was
# due: another worker's claim holds it, and will soon have it.
MIN_PAUSE = 0.05


class Producer:
    def __init__(
        self,
        backend: DatabaseTaskBackend,
        worker_id: str,
        queue_names: Sequence[str],
        outage: Outage,
        give_up: Callable[[], bool],
    ) -> None:
        self.backend = backend
        self.worker_id = worker_id
        self.queue_names = tuple(queue_names)
        self.claimed: deque[DatabaseTask] = deque()
        # Set by a claim that found nothing: look before claiming again.
        self.found_nothing = False
        self._outage = outage
        self._give_up = give_up
        # How many claimed tasks, from the front, the started list names.
        self.startable = 0
        self._seconds_per_task: float | None = None
        # When an idle worker looks again (time.monotonic()).
        self._next_look = 0.0
        self._uncertain = False

    def observe(self, seconds: float) -> None:
        """Learn how long a task took to run."""
        if self._seconds_per_task is None:
            self._seconds_per_task = seconds
        else:
            self._seconds_per_task += _SMOOTHING * (seconds - self._seconds_per_task)

    def prefetch(self, concurrency: int) -> int:
        """How many claimed tasks are worth holding beyond the free slots."""
        if self._seconds_per_task is None:
            return 0
        expected = concurrency * PREFETCH_WINDOW / max(self._seconds_per_task, 1e-6)
        return min(MAX_CLAIM, int(expected))

    def wanted(self, *, free: int, concurrency: int, left: int) -> int:
        """How many tasks to claim now, ``left`` at most (what ``max_tasks``
        leaves once the tasks in hand, these held ones among them, are
        counted): none while the held ones can fill the free slots and keep
        half the prefetch in reserve."""
        prefetch = self.prefetch(concurrency)
        held = len(self.claimed)
        if held >= free and held > prefetch // 2:
            return 0
        return max(0, min(free + prefetch - held, MAX_CLAIM, left))

    def starts(
        self,
        *,
        held: Callable[[], list],
        free: int,
        concurrency: int,
        window: float,
    ) -> tuple[list, int] | None:
        """The started list that lets the worker start more claimed tasks,
        and how many it lets start: every task ``held()`` (started, not
        stored), then those for the free slots and those expected to start
        within ``window`` seconds. None when the list names enough already.
        It never names fewer claimed tasks than the last one did: if writing
        it fails, the worker goes on starting those."""
        ahead = 0
        if self._seconds_per_task is not None:
            ahead = int(concurrency * window / max(self._seconds_per_task, 1e-6))
        count = min(len(self.claimed), free + ahead)
        if count <= self.startable:
            return None
        return held() + [row.pk for row in islice(self.claimed, count)], count

    def record_starts(self, task_ids: list, count: int) -> None:
        """Write the started list ``task_ids`` alone, then let ``count``
        claimed tasks start; during an outage, wait for the database."""
        try:
            self._outage.until_available(
                lambda: registry.record_started(self.backend, self.worker_id, task_ids),
                using=self.backend.database,
                give_up=self._give_up,
            )
        except Interrupted:
            return
        self.startable = count

    def take(self) -> DatabaseTask:
        """The next claimed task to start; only while ``startable``."""
        assert self.startable > 0
        self.startable -= 1
        return self.claimed.popleft()

    def seconds_until_due(self, interval: float) -> float:
        """Until the next look, or sooner when a READY task comes due (0 if
        one is). Looks are ``interval`` apart, from the start of one to the
        start of the next: the tasks a look found and their results take
        nothing off the sleep that follows."""
        now = time.monotonic()
        if now >= self._next_look:
            self._next_look = now + interval
        return listener.until_due(self.backend, self.queue_names, self._next_look - now)

    def claim(self, limit: int, keep: Callable[[], list]) -> int:
        """Claim up to ``limit`` tasks into ``claimed``; how many came. A
        claim whose answer was lost is first undone: the tasks this worker
        holds, except ``keep()``'s primary keys and those already claimed,
        go back to READY."""
        database = self.backend.database
        try:
            if self._uncertain:
                self._outage.until_available(
                    lambda: self._release_lost(keep()),
                    using=database,
                    give_up=self._give_up,
                )
            rows = self._outage.until_available(
                lambda: self._claim(limit), using=database, give_up=self._give_up
            )
        except Interrupted:
            return 0
        self.claimed.extend(rows)
        self.found_nothing = not rows
        return len(rows)

    def release(self) -> None:
        """Give back the claimed tasks never started. If the database cannot
        be reached they stay held, and are rescued with the worker."""
        if not self.claimed:
            return
        rows = list(self.claimed)
        try:
            transitions.release_unstarted(self.backend.database, self.worker_id, rows)
        except DatabaseError as error:
            logger.warning(
                "Worker %s could not release %d claimed task(s) it never started "
                "(%s); they are rescued like a crashed worker's.",
                self.worker_id,
                len(rows),
                error,
            )
            return
        self.claimed.clear()
        self.startable = 0

    def _claim(self, limit: int) -> list[DatabaseTask]:
        try:
            return claim_tasks(
                using=self.backend.database,
                backend_name=self.backend.alias,
                worker_id=self.worker_id,
                queue_names=self.queue_names,
                limit=limit,
            )
        except DatabaseError:
            # The database may have committed a claim whose answer was lost:
            # such tasks would be held by this worker but run nowhere.
            self._uncertain = True
            raise

    def _release_lost(self, keep: list) -> None:
        keep = keep + [row.pk for row in self.claimed]
        released = transitions.release_held(self.backend.database, self.worker_id, keep)
        self._uncertain = False
        if released:
            logger.warning(
                "Worker %s released %d task(s) whose claim it never heard back from.",
                self.worker_id,
                released,
            )
