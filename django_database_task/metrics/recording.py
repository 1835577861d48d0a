"""Counters and histograms, fed by the task signals of the backends that opt
in. Every series is labelled by task path, queue and backend alias.

A receiver never raises: a metric that cannot be written (a deleted
multiprocess directory) must not fail a task or stop a worker.
"""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.tasks import TaskResult, TaskResultStatus, task_backends
from django.tasks.exceptions import InvalidTaskBackend
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram

from ..backends import DatabaseTaskBackend
from . import enabled

logger = logging.getLogger(__name__)

PREFIX = "django_database_task"
LABELS = ("task", "queue", "backend")
# From a few milliseconds to an hour, for task runs and for waits alike.
BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

# This package's own: metrics/ serves these, whatever else the project counts.
registry = CollectorRegistry()


def _counter(name: str, documentation: str) -> Counter:
    return Counter(f"{PREFIX}_tasks_{name}", documentation, LABELS, registry=registry)


ENQUEUED = _counter("enqueued", "Tasks enqueued.")
STARTED = _counter("started", "Attempts started.")
SUCCEEDED = _counter("succeeded", "Tasks that ended SUCCESSFUL.")
FAILED = _counter(
    "failed", "Tasks that ended FAILED, by their last attempt or by a rescue."
)
RETRIED = _counter("retried", "Failed attempts that will be tried again.")
RESCUED = _counter(
    "rescued", "Tasks taken back from lost workers (READY again, or FAILED)."
)
DURATION = Histogram(
    f"{PREFIX}_task_duration_seconds",
    "How long each attempt ran, from its start to its outcome.",
    LABELS,
    buckets=BUCKETS,
    registry=registry,
)
START_LATENCY = Histogram(
    f"{PREFIX}_task_start_latency_seconds",
    "How long a task waited from when it became due (run_after, else its "
    "enqueueing) until its first attempt started.",
    LABELS,
    buckets=BUCKETS,
    registry=registry,
)
OUTCOMES = {
    TaskResultStatus.SUCCESSFUL: SUCCEEDED,
    TaskResultStatus.FAILED: FAILED,
    TaskResultStatus.READY: RETRIED,
}


def _metered(sender: object, alias: str) -> bool:
    """Whether the event comes from a database backend that opts in."""
    if not (isinstance(sender, type) and issubclass(sender, DatabaseTaskBackend)):
        return False
    try:
        return enabled(task_backends[alias])
    except InvalidTaskBackend:
        return False


def _never_raises(receiver: Callable[..., None]) -> Callable[..., None]:
    @wraps(receiver)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            receiver(*args, **kwargs)
        except Exception:
            logger.exception("Task metrics could not be recorded.")

    return guarded


def _labels(result: TaskResult) -> dict[str, str]:
    return {
        "task": result.task.module_path,
        "queue": result.task.queue_name,
        "backend": result.backend,
    }


@_never_raises
def on_enqueued(sender: object, task_result: TaskResult, **kwargs: Any) -> None:
    if _metered(sender, task_result.backend):
        ENQUEUED.labels(**_labels(task_result)).inc()


@_never_raises
def on_started(sender: object, task_result: TaskResult, **kwargs: Any) -> None:
    if not _metered(sender, task_result.backend):
        return
    labels = _labels(task_result)
    STARTED.labels(**labels).inc()
    started = task_result.last_attempted_at
    # Only the first attempt: later ones wait out a retry backoff on purpose.
    if task_result.attempts == 1 and started is not None:
        due = task_result.task.run_after or task_result.enqueued_at
        if due is not None:
            waited = (started - due).total_seconds()
            START_LATENCY.labels(**labels).observe(max(waited, 0.0))


@_never_raises
def on_finished(sender: object, task_result: TaskResult, **kwargs: Any) -> None:
    if not _metered(sender, task_result.backend):
        return
    labels = _labels(task_result)
    counter = OUTCOMES.get(task_result.status)
    if counter is not None:
        counter.labels(**labels).inc()
    started = task_result.last_attempted_at
    if started is not None:
        # An attempt to be retried has no finished_at: it ended just now.
        ended = task_result.finished_at or timezone.now()
        DURATION.labels(**labels).observe(max((ended - started).total_seconds(), 0))


@_never_raises
def on_rescued(
    sender: object,
    *,
    backend_name: str,
    task_path: str,
    queue_name: str,
    status: str,
    **kwargs: Any,
) -> None:
    if not _metered(sender, backend_name):
        return
    labels = {"task": task_path, "queue": queue_name, "backend": backend_name}
    RESCUED.labels(**labels).inc()
    if status == TaskResultStatus.FAILED:
        FAILED.labels(**labels).inc()
