"""The queue dashboard: counts, the oldest waiting task, and throughput.

Four grouped queries whatever the table size: counts per backend, queue and
status; the oldest due READY task per queue (served by the claim index); and
the tasks finished in the last day per hour and in the last hour per minute
(served by the ``(status, finished_at)`` index).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Min
from django.db.models.functions import TruncHour, TruncMinute
from django.tasks import TaskResultStatus
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from .charts import Bucket, bar_chart

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


def dashboard_context(queryset, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    rows = queue_rows(queryset, now)
    totals = [sum(r.counts.get(s, 0) for r in rows) for s in STATUSES]
    return {
        "now": now,
        "statuses": STATUSES,
        "status_totals": list(zip(STATUSES, totals, strict=True)),
        "queue_rows": rows,
        **throughput(queryset, now),
    }
