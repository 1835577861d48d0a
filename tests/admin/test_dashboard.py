"""The queue dashboard and its SVG charts."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_database_task.admin.charts import Bucket, _nice_max, bar_chart
from tests.factories import failed_task, finished_task, make_task

pytestmark = pytest.mark.django_db


def test_counts_per_status_and_queue(admin_client, dashboard_url):
    make_task()
    make_task(queue_name="emails")
    make_task(status="RUNNING", queue_name="emails")
    finished_task()
    failed_task(queue_name="emails")
    response = admin_client.get(dashboard_url)
    assert response.status_code == 200
    totals = {s.value: n for s, n in response.context["status_totals"]}
    assert totals == {"READY": 2, "RUNNING": 1, "SUCCESSFUL": 1, "FAILED": 1}
    rows = {r.queue_name: r.status_counts for r in response.context["queue_rows"]}
    # Columns in TaskResultStatus order: READY, RUNNING, FAILED, SUCCESSFUL.
    order = [s.value for s in response.context["statuses"]]
    assert dict(zip(order, rows["emails"], strict=True)) == {
        "READY": 1,
        "RUNNING": 1,
        "SUCCESSFUL": 0,
        "FAILED": 1,
    }
    assert dict(zip(order, rows["default"], strict=True))["SUCCESSFUL"] == 1


def test_oldest_due_task_age_per_queue(admin_client, dashboard_url):
    now = timezone.now()
    make_task(due_at=now - timedelta(minutes=30), enqueued_at=now)
    make_task(due_at=now - timedelta(minutes=5), enqueued_at=now)
    make_task(queue_name="later", run_after=now + timedelta(hours=1))
    response = admin_client.get(dashboard_url)
    rows = {r.queue_name: r for r in response.context["queue_rows"]}
    assert rows["default"].oldest_age == "30\xa0minutes"
    assert rows["later"].oldest_age == ""  # deferred tasks are not waiting yet
    assert "30\xa0minutes" in response.content.decode()


def test_throughput_last_hour_and_day(admin_client, dashboard_url):
    now = timezone.now()
    finished_task(finished_at=now - timedelta(minutes=1))
    finished_task(finished_at=now - timedelta(minutes=20))
    failed_task(finished_at=now - timedelta(minutes=2))
    finished_task(finished_at=now - timedelta(hours=5))
    failed_task(finished_at=now - timedelta(days=2))
    context = admin_client.get(dashboard_url).context
    assert (context["hour_successful"], context["hour_failed"]) == (2, 1)
    assert (context["day_successful"], context["day_failed"]) == (3, 1)
    html = admin_client.get(dashboard_url).content.decode()
    assert "Last hour: 2 successful, 1 failed" in html
    assert "Last 24 hours: 3 successful, 1 failed" in html
    assert html.count('<svg class="ddt-chart"') == 2
    assert html.count('class="ddt-bar-failed"') == 2


def test_fixed_number_of_queries(admin_client, dashboard_url):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            admin_client.get(dashboard_url)
        return len(captured)

    failed_task()
    few = queries()
    for index in range(20):
        finished_task(queue_name=f"q{index}")
        make_task(queue_name=f"q{index}")
    assert queries() == few


def test_dashboard_links_filtered_lists(admin_client, dashboard_url, changelist_url):
    make_task(queue_name="emails")
    html = admin_client.get(dashboard_url).content.decode()
    assert f"{changelist_url}?status__exact=FAILED" in html
    assert f"{changelist_url}?queue_name=emails&amp;backend_name=default" in html


def test_empty_dashboard(admin_client, dashboard_url):
    html = admin_client.get(dashboard_url).content.decode()
    assert "No tasks yet." in html
    assert "Last hour: 0 successful, 0 failed" in html


def test_nice_max_is_round():
    assert [_nice_max(n) for n in (0, 1, 3, 7, 11, 260)] == [1, 1, 5, 10, 20, 500]


def test_bars_are_stacked_and_scaled():
    svg = str(bar_chart([Bucket("10:00", 3, 2), Bucket("11:00", 0, 0)], "T"))
    heights = dict(
        re.findall(
            r'class="(ddt-bar-\w+)" x="[\d.]+" y="[\d.]+" width="[\d.]+" '
            r'height="([\d.]+)"',
            svg,
        )
    )
    # 5 tasks against a top of 5: the bars fill the plot height (150).
    assert float(heights["ddt-bar-successful"]) == pytest.approx(90.0)
    assert float(heights["ddt-bar-failed"]) == pytest.approx(60.0)
    assert "<title>10:00: 3 successful, 2 failed</title>" in svg
    assert svg.count("<rect") == 2


def test_chart_labels_are_escaped():
    svg = str(bar_chart([Bucket("<b>", 1, 0)], "<i>title</i>"))
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert "&lt;i&gt;title&lt;/i&gt;" in svg
