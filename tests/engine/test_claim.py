"""Claiming: order, due time, filters, and one claim per task."""

from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone

from django_database_task.engine.claim import claim_task_by_id, claim_tasks
from django_database_task.models import DatabaseTask
from tests import tasks

pytestmark = pytest.mark.django_db


def claim(**kwargs):
    options = {"using": "default", "backend_name": "default", "worker_id": "w1"}
    return claim_tasks(**options | kwargs)


def by_id(result, backend_name="default"):
    return {
        "using": "default",
        "task_id": result.id,
        "backend_name": backend_name,
        "worker_id": "w",
    }


def test_claim_marks_running_and_records_the_worker():
    result = tasks.add.enqueue(1, 2)
    [row] = claim()
    assert str(row.id) == result.id
    assert row.status == TaskResultStatus.RUNNING
    assert row.worker_ids == ["w1"]
    assert row.started_at is not None
    assert row.last_attempted_at == row.started_at
    assert claim() == []


def test_claim_takes_highest_priority_first_then_fifo():
    low = tasks.add.using(priority=-5).enqueue(0, 0)
    first = tasks.add.enqueue(0, 1)
    second = tasks.add.enqueue(0, 2)
    high = tasks.add.using(priority=50).enqueue(0, 3)
    claimed = [str(claim()[0].id) for _ in range(4)]
    assert claimed == [high.id, first.id, second.id, low.id]


def test_claim_respects_its_limit_and_returns_rows_in_claim_order():
    results = [tasks.add.using(priority=p).enqueue(0, p) for p in (1, 3, 2, 0, 5)]
    rows = claim(limit=3)
    assert [row.priority for row in rows] == [5, 3, 2]
    assert DatabaseTask.objects.filter(status="RUNNING").count() == 3
    assert len(results) == 5


def test_a_task_due_later_is_never_claimed_before_its_time():
    later = timezone.now() + timedelta(minutes=5)
    tasks.add.using(run_after=later, priority=100).enqueue(1, 1)
    assert claim() == []
    [row] = claim(now=later + timedelta(seconds=1))
    assert row.run_after == later


def test_due_order_puts_an_overdue_deferred_task_before_a_newer_one():
    newer = tasks.add.enqueue(0, 0)
    overdue = tasks.add.using(run_after=timezone.now() - timedelta(hours=1)).enqueue(
        0, 1
    )
    assert str(claim()[0].id) == overdue.id
    assert str(claim()[0].id) == newer.id


def test_claim_filters_by_queue_and_backend():
    tasks.send_newsletter.enqueue()
    default = tasks.add.enqueue(1, 1)
    DatabaseTask.objects.filter(pk=default.id).update(backend_name="other")
    assert claim(queue_names=["reports"]) == []
    assert claim(backend_name="missing") == []
    [row] = claim(queue_names=["emails"])
    assert row.queue_name == "emails"
    [row] = claim(backend_name="other")
    assert str(row.id) == default.id


def test_claim_by_id_runs_ready_tasks_even_before_they_are_due():
    later = timezone.now() + timedelta(hours=1)
    result = tasks.add.using(run_after=later).enqueue(1, 1)
    row = claim_task_by_id(**by_id(result))
    assert row.status == TaskResultStatus.RUNNING
    assert claim_task_by_id(**by_id(result)) is None


def test_claim_by_id_retries_failed_tasks_only_when_allowed():
    result = tasks.fail.enqueue()
    DatabaseTask.objects.filter(pk=result.id).update(
        status="FAILED", worker_ids=["before"]
    )
    assert claim_task_by_id(**by_id(result)) is None
    row = claim_task_by_id(**by_id(result), allow_retry=True)
    assert row.status == TaskResultStatus.RUNNING
    assert row.worker_ids == ["before", "w"]


def test_claim_by_id_only_claims_a_task_of_the_given_backend():
    result = tasks.add.enqueue(1, 1)
    assert claim_task_by_id(**by_id(result, backend_name="other")) is None
    assert DatabaseTask.objects.get(pk=result.id).status == TaskResultStatus.READY
