"""The queue dashboard: counts, the oldest waiting task, throughput, and the
live workers.

Four grouped queries whatever the table size: counts per backend, queue and
status; the oldest due READY task per queue (served by the claim index); and
the tasks finished in the last day per hour and in the last hour per minute
(served by the ``(status, finished_at)`` index). Three more for the workers,
whatever their number: the live ones, the tasks they hold, and the dead ones
not yet pruned.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Min, Q
from django.db.models.functions import TruncHour, TruncMinute
from django.tasks import TaskResultStatus
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from ..backends import DatabaseTaskBackend
from ..engine import registry
from ..models import DatabaseTask, DatabaseTaskWorker
from .charts import Bucket, bar_chart
from .columns import short_datetime
from .config import database_backends

STATUSES = list(TaskResultStatus)
FINISHED = [TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED]


@dataclass
class QueueRow:
    backend_name: str
    queue_name: str
    counts: dict = field(default_factory=dict)
    oldest_due: datetime | None = None
    now: datetime | None = None

    @property
    def status_counts(self) -> list[int]:
        return [self.counts.get(status, 0) for status in STATUSES]

    @property
    def oldest_age(self) -> str:
        """How long the oldest due task has waited, e.g. "3 minutes"."""
        return timesince(self.oldest_due, self.now) if self.oldest_due else ""


def queue_rows(queryset, now: datetime) -> list[QueueRow]:
    rows: dict[tuple[str, str], QueueRow] = {}

    def row(backend_name: str, queue_name: str) -> QueueRow:
        key = (backend_name, queue_name)
        if key not in rows:
            rows[key] = QueueRow(backend_name, queue_name, now=now)
        return rows[key]

    grouped = (
        queryset.order_by()
        .values_list("backend_name", "queue_name", "status")
        .annotate(n=Count("pk"))
    )
    for backend_name, queue_name, status, n in grouped:
        row(backend_name, queue_name).counts[status] = n
    oldest = (
        queryset.order_by()
        .filter(status=TaskResultStatus.READY, due_at__lte=now)
        .values_list("backend_name", "queue_name")
        .annotate(oldest=Min("due_at"))
    )
    for backend_name, queue_name, oldest_due in oldest:
        row(backend_name, queue_name).oldest_due = oldest_due
    return [rows[key] for key in sorted(rows)]


def _finished_since(queryset, since: datetime, trunc) -> dict:
    """{(bucket start, status): count} of tasks finished since ``since``."""
    grouped = (
        queryset.order_by()
        .filter(status__in=FINISHED, finished_at__gte=since)
        .annotate(bucket=trunc("finished_at", tzinfo=UTC))
        .values_list("bucket", "status")
        .annotate(n=Count("pk"))
    )
    counts: dict = defaultdict(int)
    for bucket, status, n in grouped:
        counts[(bucket.astimezone(UTC), status)] += n
    return counts


def _buckets(counts: dict, starts: list[datetime], width: timedelta) -> list[Bucket]:
    buckets = []
    for start in starts:
        totals = {status: 0 for status in FINISHED}
        for (when, status), n in counts.items():
            if start <= when < start + width:
                totals[status] += n
        buckets.append(
            Bucket(
                time_format(timezone.localtime(start), "H:i"),
                totals[TaskResultStatus.SUCCESSFUL],
                totals[TaskResultStatus.FAILED],
            )
        )
    return buckets


def throughput(queryset, now: datetime) -> dict:
    """Finished tasks over the last day (hourly bars) and the last hour
    (five-minute bars), with their totals and charts."""
    hour_start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    day_starts = [hour_start - timedelta(hours=h) for h in range(23, -1, -1)]
    day = _buckets(
        _finished_since(queryset, day_starts[0], TruncHour),
        day_starts,
        timedelta(hours=1),
    )
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    five = minute - timedelta(minutes=minute.minute % 5)
    hour_starts = [five - timedelta(minutes=5 * i) for i in range(11, -1, -1)]
    hour = _buckets(
        _finished_since(queryset, hour_starts[0], TruncMinute),
        hour_starts,
        timedelta(minutes=5),
    )
    return {
        "day_chart": bar_chart(day, _("Finished tasks per hour, last 24 hours"), 3),
        "hour_chart": bar_chart(
            hour, _("Finished tasks per five minutes, last hour"), 2
        ),
        "day_successful": sum(b.successful for b in day),
        "day_failed": sum(b.failed for b in day),
        "hour_successful": sum(b.successful for b in hour),
        "hour_failed": sum(b.failed for b in hour),
    }


@dataclass
class WorkerRow:
    worker: DatabaseTaskWorker
    now: datetime
    # (id, task path) of the RUNNING tasks the worker holds.
    tasks: list[tuple] = field(default_factory=list)

    @property
    def queues(self) -> str:
        queues = self.worker.queues
        if not queues:
            return _("all")
        return ", ".join(map(str, queues)) if isinstance(queues, list) else str(queues)

    @property
    def started(self) -> str:
        return short_datetime(self.worker.started_at)

    @property
    def heartbeat_age(self) -> str:
        """Seconds since the last heartbeat; never negative, should the
        worker's clock run ahead."""
        age = (self.now - self.worker.last_heartbeat_at).total_seconds()
        return _("%(seconds)d s ago") % {"seconds": max(0, int(age))}


@dataclass
class WorkerTable:
    backend_name: str
    rows: list[WorkerRow]
    dead: int


def worker_tables(
    database: str, backends: list[DatabaseTaskBackend], now: datetime
) -> list[WorkerTable]:
    """Per backend kept in ``database``: its live workers, the tasks each
    runs, and how many dead workers wait to be pruned."""
    backends = [b for b in backends if b.database == database]
    if not backends:
        return []
    live = [registry.live_workers(backend, now) for backend in backends]
    rows = [
        WorkerRow(worker, now)
        for worker in sorted(
            live[0].union(*live[1:], all=True),
            key=lambda w: (w.host, w.pid, w.started_at, w.pk),
        )
    ]
    by_id = {row.worker.pk: row for row in rows}
    if by_id:
        held = (
            DatabaseTask.objects.using(database)
            .filter(status=TaskResultStatus.RUNNING, worker_id__in=list(by_id))
            .order_by("last_attempted_at", "pk")
            .values_list("worker_id", "pk", "task_path")
        )
        for worker_id, pk, task_path in held:
            by_id[worker_id].tasks.append((pk, task_path))
    dead = Q()
    for backend, workers in zip(backends, live, strict=True):
        dead |= Q(backend_name=backend.alias) & ~Q(pk__in=workers.values("pk"))
    dead_counts = dict(
        DatabaseTaskWorker.objects.using(database)
        .filter(dead)
        .order_by()
        .values_list("backend_name")
        .annotate(n=Count("pk"))
    )
    return [
        WorkerTable(
            backend.alias,
            [row for row in rows if row.worker.backend_name == backend.alias],
            dead_counts.get(backend.alias, 0),
        )
        for backend in backends
    ]


def dashboard_context(queryset, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    rows = queue_rows(queryset, now)
    totals = [sum(r.counts.get(s, 0) for r in rows) for s in STATUSES]
    return {
        "now": now,
        "statuses": STATUSES,
        "status_totals": list(zip(STATUSES, totals, strict=True)),
        "queue_rows": rows,
        "worker_tables": worker_tables(queryset.db, database_backends(), now),
        **throughput(queryset, now),
    }
