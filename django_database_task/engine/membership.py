"""A worker's time in the registry: it registers before it may run a task,
heartbeats while it may, and leaves either done (its row deleted) or dead
(its row aged at once), so that tasks it could not finish are rescued at the
next heartbeat of any live worker."""

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from django.db import DatabaseError

from ..backends import DatabaseTaskBackend
from . import registry
from .heartbeat import Heartbeat
from .transient import Outage

logger = logging.getLogger("django_database_task.worker")


class Abandoned(Exception):
    """The worker stops with tasks still running."""


@contextmanager
def registered(
    backend: DatabaseTaskBackend,
    worker_id: str,
    *,
    queues: Sequence[str],
    concurrency: int,
    keeps_started: bool,
    outage: Outage,
    give_up: Callable[[], bool],
    unfinished: Callable[[], bool],
) -> Iterator[None]:
    """In the registry, heartbeating, for as long as tasks may run. The
    worker leaves dead when ``Abandoned`` or KeyboardInterrupt ends the block
    or ``unfinished()`` says it leaves work behind. Registering waits out an
    outage; ``Interrupted`` when ``give_up()`` says so meanwhile."""
    outage.until_available(
        lambda: registry.register(
            backend,
            worker_id,
            queues=queues,
            concurrency=concurrency,
            keeps_started=keeps_started,
        ),
        using=backend.database,
        give_up=give_up,
    )
    heartbeat = Heartbeat(
        backend, worker_id, queues=tuple(queues), concurrency=concurrency
    )
    heartbeat.start()
    abandoned = False
    try:
        yield
    except (Abandoned, KeyboardInterrupt) as error:
        abandoned = True
        if isinstance(error, KeyboardInterrupt):
            raise
    finally:
        heartbeat.stop()
        _leave(backend, worker_id, dead=abandoned or unfinished())


def _leave(backend: DatabaseTaskBackend, worker_id: str, *, dead: bool) -> None:
    try:
        if dead:
            registry.abandon(backend, worker_id)
        else:
            registry.deregister(backend, worker_id)
    except DatabaseError as error:
        # The row ages out; the rescuer rescues its tasks and prunes it.
        logger.warning("Worker %s could not leave the registry: %s", worker_id, error)
