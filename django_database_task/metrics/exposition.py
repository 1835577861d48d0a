"""What ``metrics/`` answers for one backend: its counters and histograms,
and gauges of its queues read from the database at scrape time.

The counters are this process's, or, when ``PROMETHEUS_MULTIPROC_DIR`` is
set, those of every process writing there, added up by prometheus-client's
``MultiProcessCollector``. The gauges need no such care: the database is the
same for every process.
"""

import logging
import os
from collections.abc import Iterable, Iterator

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.db.models import Count, Min, Q
from django.tasks import TaskResultStatus
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ..backends import DatabaseTaskBackend
from ..engine import registry as workers
from ..models import DatabaseTask
from . import recording

logger = logging.getLogger(__name__)

PREFIX = recording.PREFIX
READY = TaskResultStatus.READY
RUNNING = TaskResultStatus.RUNNING


class QueueCollector(Collector):
    """Gauges of one backend, per queue, in two queries whatever the number
    of queues: every queue in QUEUES is reported, and any other holding
    READY or RUNNING tasks."""

    def __init__(self, backend: DatabaseTaskBackend) -> None:
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        alias = self.backend.alias
        up = GaugeMetricFamily(
            f"{PREFIX}_database_up",
            "1 when the queue gauges could be read from the database, else 0.",
            labels=["backend"],
        )
        try:
            now = timezone.now()
            queues = self._queues(now)
            live = workers.live_workers(self.backend, now).count()
        except DatabaseError as error:
            logger.warning(
                "Task metrics of backend %r could not read the database: %s",
                alias,
                error,
            )
            up.add_metric([alias], 0)
            yield up
            return
        up.add_metric([alias], 1)
        yield up
        families = {
            "ready": GaugeMetricFamily(
                f"{PREFIX}_tasks_ready",
                "READY tasks that are due: waiting for a worker.",
                labels=["queue", "backend"],
            ),
            "delayed": GaugeMetricFamily(
                f"{PREFIX}_tasks_delayed",
                "READY tasks not due yet (run_after or a retry backoff ahead).",
                labels=["queue", "backend"],
            ),
            "running": GaugeMetricFamily(
                f"{PREFIX}_tasks_running",
                "RUNNING tasks.",
                labels=["queue", "backend"],
            ),
            "oldest": GaugeMetricFamily(
                f"{PREFIX}_oldest_ready_age_seconds",
                "How long the longest-waiting due task has been due (0 if none).",
                labels=["queue", "backend"],
            ),
        }
        for queue, values in sorted(queues.items()):
            for name, family in families.items():
                family.add_metric([queue, alias], values[name])
        yield from families.values()
        live_family = GaugeMetricFamily(
            f"{PREFIX}_workers",
            "Live workers: heard from within RESCUE_AFTER.",
            labels=["backend"],
        )
        live_family.add_metric([alias], live)
        yield live_family

    def _queues(self, now) -> dict[str, dict[str, float]]:
        due = Q(status=READY, due_at__lte=now)
        rows = (
            DatabaseTask.objects.using(self.backend.database)
            .filter(backend_name=self.backend.alias, status__in=[READY, RUNNING])
            .values("queue_name")
            .annotate(
                ready=Count("pk", filter=due),
                delayed=Count("pk", filter=Q(status=READY, due_at__gt=now)),
                running=Count("pk", filter=Q(status=RUNNING)),
                oldest_due=Min("due_at", filter=due),
            )
            .order_by()
        )
        empty = {"ready": 0, "delayed": 0, "running": 0, "oldest": 0}
        queues: dict[str, dict[str, float]] = {
            queue: dict(empty) for queue in self.backend.queues
        }
        for row in rows:
            oldest_due = row["oldest_due"]
            queues[row["queue_name"]] = {
                "ready": row["ready"],
                "delayed": row["delayed"],
                "running": row["running"],
                "oldest": (
                    max((now - oldest_due).total_seconds(), 0.0) if oldest_due else 0
                ),
            }
        return queues


class OfBackend(Collector):
    """The series of this package that belong to one backend: a token for
    one backend reads nothing of another, nor the project's other metrics
    that share the multiprocess directory."""

    def __init__(self, source: Collector | CollectorRegistry, alias: str) -> None:
        self.source = source
        self.alias = alias

    def collect(self) -> Iterable[Metric]:
        for family in self.source.collect():
            if not family.name.startswith(PREFIX):
                continue
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [
                sample
                for sample in family.samples
                if sample.labels.get("backend") == self.alias
            ]
            yield kept


def render(backend: DatabaseTaskBackend) -> tuple[bytes, str]:
    """The backend's metrics in Prometheus' text format, and its content type."""
    source: Collector | CollectorRegistry = recording.registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        try:
            source = MultiProcessCollector(None)
        except ValueError as e:
            raise ImproperlyConfigured(
                f"PROMETHEUS_MULTIPROC_DIR must name an existing directory ({e})."
            ) from None
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(OfBackend(source, backend.alias))
    scraped.register(QueueCollector(backend))
    return generate_latest(scraped), CONTENT_TYPE_LATEST
