"""get_queue_stats() and GET status/ count the live workers."""

from datetime import timedelta

import pytest
from django.tasks import task_backends
from django.utils import timezone

from django_database_task import get_queue_stats
from django_database_task.engine import registry
from django_database_task.models import DatabaseTaskWorker
from tests.endpoints import tasks_setting

pytestmark = pytest.mark.django_db


def register_workers() -> None:
    """On the default backend: a worker of every queue, one of "emails", a
    dead one and one silent just past RESCUE_AFTER; one on "other"."""
    default, other = task_backends["default"], task_backends["other"]
    registry.register(default, "all-queues")
    registry.register(default, "emails-only", queues=["emails"])
    registry.register(default, "crashed")
    registry.abandon(default, "crashed")
    registry.register(default, "silent")
    DatabaseTaskWorker.objects.filter(pk="silent").update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=default.rescue_after + 1)
    )
    registry.register(other, "elsewhere")


@pytest.fixture
def workers(settings):
    settings.TASKS = tasks_setting()
    register_workers()


def test_no_worker():
    assert get_queue_stats()["workers"] == 0


def test_live_workers_of_the_backend(workers):
    stats = get_queue_stats()
    assert stats["workers"] == 2
    assert get_queue_stats(backend_name="other")["workers"] == 1
    # Every earlier key is still there.
    assert set(stats) == {
        "ready",
        "running",
        "successful",
        "failed",
        "delayed",
        "oldest_pending_since",
        "workers",
    }


def test_live_workers_serving_a_queue(workers):
    assert get_queue_stats(queue_name="emails")["workers"] == 2
    assert get_queue_stats(queue_name="reports")["workers"] == 1


def test_a_deregistered_worker_is_gone(workers):
    registry.deregister(task_backends["default"], "all-queues")
    assert get_queue_stats()["workers"] == 1


def test_status_endpoint_reports_workers(api):
    register_workers()
    body = api.get("status/").json()
    assert body["workers"] == 2
    assert body["pending_count"] == body["ready"] == 0
    assert api.get("status/", {"queue_name": "reports"}).json()["workers"] == 1
    assert api.get("status/", {"backend_name": "other"}).json()["workers"] == 1
