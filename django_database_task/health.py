"""Whether a backend's queues are served and keep up, for probes and monitors.

``check_health`` reads the worker registry and the due backlog and returns
what it saw, with the limits exceeded as problems. It prints nothing and
picks no exit code, so that a command, an endpoint or a monitor words the
outcome its own way; and it lets the database's errors through, so that its
caller can tell "the queue is unhealthy" from "the database is down".
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min
from django.tasks import TaskResultStatus
from django.utils import timezone

from .backends import DatabaseTaskBackend
from .durations import format_duration
from .engine import registry
from .models import DatabaseTask, DatabaseTaskWorker


@dataclass(frozen=True)
class Limits:
    """What healthy means. ``host``: a worker on that host must have been
    heard from within ``max_heartbeat_age`` (the backend's RESCUE_AFTER if
    None). A limit left at None, or ``min_workers`` at 0, is not checked."""

    min_workers: int = 0
    host: str | None = None
    max_heartbeat_age: timedelta | None = None
    max_age: timedelta | None = None
    max_backlog: int | None = None


@dataclass(frozen=True)
class Problem:
    """A limit not met; ``limit`` names the ``Limits`` field, so that a caller
    can point at the option or setting it came from."""

    limit: str
    message: str


@dataclass(frozen=True)
class Health:
    """What the check saw: live workers serving the queues, those of them on
    ``host`` (heard from within its heartbeat age), the due READY tasks and
    how long the oldest has waited."""

    live_workers: int
    host: str | None
    host_workers: int
    due: int
    oldest_wait: timedelta | None
    problems: list[Problem]

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        """One line: 3 live workers (1 on host web-1), 12 due tasks, oldest
        waiting 2s."""
        summary = _workers(self.live_workers)
        if self.host is not None:
            summary += f" ({self.host_workers} on host {self.host})"
        summary += f", {self.due} due task{'' if self.due == 1 else 's'}"
        if self.oldest_wait is not None:
            summary += f", oldest waiting {format_duration(self.oldest_wait)}"
        return summary


def check_health(
    backend: DatabaseTaskBackend,
    limits: Limits,
    queue_names: Sequence[str] = (),
    now: datetime | None = None,
) -> Health:
    """Check ``limits`` on the backend's queues (all of them without
    ``queue_names``; then ``min_workers`` applies to each queue). Queue names
    and host are trusted: check text from outside with ``check_text`` first."""
    now = now or timezone.now()
    live = list(registry.live_workers(backend, now).values_list("queues", flat=True))
    serving = [queues for queues in live if _serves(queues, queue_names)]
    backlog = _due_tasks(backend, queue_names, now).aggregate(
        due=Count("pk"), oldest=Min("due_at")
    )
    oldest_wait = now - backlog["oldest"] if backlog["oldest"] else None
    problems = _too_few_workers(backend, limits.min_workers, live, queue_names)
    host_workers = 0
    if limits.host is not None:
        host_workers, problem = _host_check(backend, limits, queue_names, now)
        problems += [problem] if problem else []
    if (
        limits.max_age is not None
        and oldest_wait is not None
        and oldest_wait > limits.max_age
    ):
        problems.append(
            Problem(
                "max_age",
                f"oldest READY task has waited {format_duration(oldest_wait)}, "
                f"more than {format_duration(limits.max_age)}",
            )
        )
    if limits.max_backlog is not None and backlog["due"] > limits.max_backlog:
        problems.append(
            Problem(
                "max_backlog",
                f"backlog of {backlog['due']} due tasks, "
                f"more than {limits.max_backlog}",
            )
        )
    return Health(
        live_workers=len(serving),
        host=limits.host,
        host_workers=host_workers,
        due=backlog["due"],
        oldest_wait=oldest_wait,
        problems=problems,
    )


def _serves(worker_queues: list[str], queue_names: Sequence[str]) -> bool:
    """A worker with no queues serves them all."""
    return (
        not queue_names
        or not worker_queues
        or bool(set(worker_queues) & set(queue_names))
    )


def _due_tasks(backend: DatabaseTaskBackend, queue_names: Sequence[str], now):
    tasks = DatabaseTask.objects.using(backend.database).filter(
        backend_name=backend.alias, status=TaskResultStatus.READY, due_at__lte=now
    )
    return tasks.filter(queue_name__in=queue_names) if queue_names else tasks


def _too_few_workers(
    backend: DatabaseTaskBackend,
    minimum: int,
    live: list[list[str]],
    queue_names: Sequence[str],
) -> list[Problem]:
    """Each queue needs ``minimum`` workers of its own: workers of another
    queue would not run its tasks."""
    counts = {
        f"queue {name!r}": sum(_serves(queues, [name]) for queues in live)
        for name in queue_names
    } or {f"backend {backend.alias!r}": len(live)}
    return [
        Problem(
            "min_workers",
            f"{where} has {_workers(count)}, fewer than {minimum}",
        )
        for where, count in counts.items()
        if count < minimum
    ]


def _host_check(
    backend: DatabaseTaskBackend,
    limits: Limits,
    queue_names: Sequence[str],
    now: datetime,
) -> tuple[int, Problem | None]:
    """How many of the host's workers serving the queues were heard from
    recently enough, and the problem if none was."""
    max_age = limits.max_heartbeat_age or timedelta(seconds=backend.rescue_after)
    heartbeats = [
        heartbeat
        for queues, heartbeat in DatabaseTaskWorker.objects.using(backend.database)
        .filter(backend_name=backend.alias, host=limits.host)
        .values_list("queues", "last_heartbeat_at")
        if _serves(queues, queue_names)
    ]
    fresh = sum(now - heartbeat <= max_age for heartbeat in heartbeats)
    if fresh:
        return fresh, None
    where = f"no live worker on host {limits.host} (backend {backend.alias!r}"
    where += f", queues {', '.join(queue_names)})" if queue_names else ")"
    if not heartbeats:
        return 0, Problem("host", f"{where}: none registered")
    age = now - max(heartbeats)
    return 0, Problem(
        "max_heartbeat_age" if limits.max_heartbeat_age else "host",
        f"{where}: last heartbeat {format_duration(age)} ago, "
        f"more than {format_duration(max_age)}",
    )


def _workers(count: int) -> str:
    return f"{count} live worker{'' if count == 1 else 's'}"
