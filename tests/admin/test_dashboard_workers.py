"""The dashboard's live workers, from the worker registry."""

from datetime import timedelta

import pytest
from django.db import connection
from django.tasks import task_backends
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from django_database_task.admin.config import database_backends
from django_database_task.admin.dashboard import worker_tables
from django_database_task.engine import registry
from django_database_task.models import DatabaseTaskWorker
from tests.endpoints import tasks_setting
from tests.factories import make_task

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def worker(worker_id: str, backend: str = "default", **fields) -> None:
    """Register a worker, then set ``fields`` on its row (what the registry
    takes from the process: host, pid, heartbeat)."""
    registry.register(
        task_backends[backend],
        worker_id,
        queues=fields.pop("queues", ()),
        concurrency=fields.pop("concurrency", 1),
    )
    if fields:
        DatabaseTaskWorker.objects.filter(pk=worker_id).update(**fields)


def running(worker_id: str, **fields):
    now = timezone.now()
    return make_task(
        status="RUNNING",
        worker_id=worker_id,
        worker_ids=[worker_id],
        started_at=now,
        last_attempted_at=now,
        **fields,
    )


def change_url(task) -> str:
    return reverse("admin:django_database_task_databasetask_change", args=[task.pk])


def test_live_workers_with_their_tasks(admin_client, dashboard_url):
    worker("web-1:41:aaa", host="web-1", pid=41, queues=["emails", "reports"])
    worker("web-2:7:bbb", host="web-2", pid=7, concurrency=4)
    registry.set_state(task_backends["default"], "web-2:7:bbb", "STOPPING")
    sending = running("web-1:41:aaa", task_path="mail.tasks.send")
    running("gone-worker", task_path="mail.tasks.orphan")
    make_task(task_path="mail.tasks.waiting", worker_id="web-1:41:aaa")
    response = admin_client.get(dashboard_url)
    (table,) = response.context["worker_tables"]
    assert table.backend_name == "default"
    assert table.dead == 0
    rows = {row.worker.host: row for row in table.rows}
    assert rows["web-1"].queues == "emails, reports"
    assert rows["web-2"].queues == "all"
    assert rows["web-1"].tasks == [(sending.pk, "mail.tasks.send")]
    assert rows["web-2"].tasks == []
    html = response.content.decode()
    assert f'href="{change_url(sending)}">mail.tasks.send' in html
    assert str(sending.pk) in html
    assert "mail.tasks.orphan" not in html
    assert "mail.tasks.waiting" not in html
    assert "<td>Stopping</td>" in html
    assert '<td class="ddt-number">4</td>' in html
    assert "worker registry" not in html


def test_dead_workers_are_counted_not_listed(admin_client, dashboard_url):
    backend = task_backends["default"]
    worker("alive")
    worker("crashed", host="crashed-host")
    registry.abandon(backend, "crashed")
    running("crashed", task_path="tests.tasks.stranded")
    html = admin_client.get(dashboard_url).content.decode()
    assert "crashed-host" not in html
    assert "tests.tasks.stranded" not in html
    assert "1 dead worker not yet pruned." in html
    worker("silent")
    DatabaseTaskWorker.objects.filter(pk="silent").update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=backend.rescue_after + 1)
    )
    assert "2 dead workers not yet pruned." in (
        admin_client.get(dashboard_url).content.decode()
    )


def test_no_live_worker(admin_client, dashboard_url):
    html = admin_client.get(dashboard_url).content.decode()
    assert "No live workers." in html
    assert "dead worker" not in html
    assert "ddt-workers-table" not in html


def test_heartbeat_age_and_start():
    now = timezone.now()
    worker("w", last_heartbeat_at=now - timedelta(seconds=7), started_at=now)
    worker("ahead", last_heartbeat_at=now + timedelta(seconds=3))
    rows = {
        row.worker.pk: row
        for row in worker_tables("default", database_backends(), now)[0].rows
    }
    assert rows["w"].heartbeat_age == "7 s ago"
    assert rows["ahead"].heartbeat_age == "0 s ago"
    assert rows["w"].started  # the locale's short date and time


@override_settings(
    TASKS={
        **tasks_setting(),
        "elsewhere": {
            "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
            "OPTIONS": {"DATABASE": "tasks"},
        },
    }
)
def test_a_table_per_backend_of_the_admin_database(admin_client, dashboard_url):
    worker("mine")
    worker("theirs", backend="other")
    tables = admin_client.get(dashboard_url).context["worker_tables"]
    assert [t.backend_name for t in tables] == ["default", "other"]
    assert [[row.worker.pk for row in t.rows] for t in tables] == [
        ["mine"],
        ["theirs"],
    ]


def test_worker_data_is_escaped(admin_client, dashboard_url):
    worker(SCRIPT, host=SCRIPT, queues=[SCRIPT])
    task = running(SCRIPT, task_path=f"tests.{SCRIPT}")
    html = admin_client.get(dashboard_url).content.decode()
    assert SCRIPT not in html
    assert html.count(ESCAPED) >= 4  # worker id, host, queue, task path
    assert change_url(task) in html


def test_queries_do_not_grow_with_workers(admin_client, dashboard_url):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            admin_client.get(dashboard_url)
        return len(captured)

    worker("first")
    running("first")
    few = queries()
    for index in range(15):
        worker(f"w{index}", queues=[f"q{index}"])
        running(f"w{index}")
        running(f"w{index}")
    for index in range(5):
        worker(f"dead{index}")
        registry.abandon(task_backends["default"], f"dead{index}")
    assert queries() == few


@override_settings(LANGUAGE_CODE="ja")
def test_workers_in_japanese(admin_client, dashboard_url):
    worker("w")
    worker("dead")
    registry.abandon(task_backends["default"], "dead")
    with translation.override("ja"):
        html = admin_client.get(dashboard_url).content.decode()
    assert "<h2>ワーカー</h2>" in html
    assert "最終ハートビート" in html
    assert "すべて" in html
    assert "秒前" in html
    assert "未削除の停止したワーカーが 1 件あります。" in html
