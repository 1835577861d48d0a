"""The heartbeat thread: keeps a worker's registry row fresh and, on every
beat, runs the rescuer, so a dead worker's tasks come back with no cron job.

It runs beside the tasks, with a database connection of its own, so that a
long task (or one stuck in C code that releases the GIL) never silences it.
A failed beat is logged once per outage and tried again on the next one.
"""

import logging
import threading

from django.db import DatabaseError, connections

from ..backends import DatabaseTaskBackend
from . import registry
from .maintenance import rescuer

logger = logging.getLogger("django_database_task.worker")


class Heartbeat:
    def __init__(
        self,
        backend: DatabaseTaskBackend,
        worker_id: str,
        *,
        queues: tuple[str, ...] = (),
        concurrency: int = 1,
    ) -> None:
        self.backend = backend
        self.worker_id = worker_id
        self.queues = queues
        self.concurrency = concurrency
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat {worker_id}", daemon=True
        )
        self._failing = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stopped.wait(self.backend.heartbeat_interval):
                self.beat()
        finally:
            connections.close_all()

    def beat(self) -> None:
        """One heartbeat and one rescue pass; never raises a DatabaseError."""
        try:
            if not registry.beat(self.backend, self.worker_id):
                registry.register(
                    self.backend,
                    self.worker_id,
                    queues=self.queues,
                    concurrency=self.concurrency,
                )
            rescued = rescuer.rescue(self.backend)
            rescuer.prune(self.backend)
        except DatabaseError as error:
            if not self._failing:
                logger.warning(
                    "Worker %s could not heartbeat (%s: %s); trying again every %g s.",
                    self.worker_id,
                    type(error).__name__,
                    error,
                    self.backend.heartbeat_interval,
                )
            self._failing = True
            connections[self.backend.database].close_if_unusable_or_obsolete()
            return
        if self._failing:
            logger.warning("Worker %s heartbeats again.", self.worker_id)
            self._failing = False
        if rescued:
            logger.warning(
                "Rescued %d task(s) of dead workers of backend %r.",
                rescued,
                self.backend.alias,
            )
