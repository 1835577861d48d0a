"""The programmatic API, following the specification's examples."""

import uuid
from datetime import timedelta

import pytest
from django.tasks.exceptions import InvalidTaskBackend, TaskResultDoesNotExist
from django.test import override_settings
from django.utils import timezone

from django_database_task import (
    get_pending_task_count,
    get_queue_stats,
    process_one_task,
    process_tasks,
    run_task_by_id,
)
from django_database_task.models import DatabaseTask
from tests import tasks

pytestmark = pytest.mark.django_db


def test_process_one_task(capsys):
    tasks.add.enqueue(1, 2)
    result = process_one_task()
    if result:
        print(f"Processed: {result.id}, status: {result.status}")
    assert capsys.readouterr().out == f"Processed: {result.id}, status: SUCCESSFUL\n"
    assert process_one_task() is None


def test_process_tasks_stops_at_max_tasks(capsys):
    for i in range(12):
        tasks.add.enqueue(i, i)
    results = process_tasks(max_tasks=10)
    print(f"Processed {len(results)} tasks")
    assert capsys.readouterr().out == "Processed 10 tasks\n"
    assert get_pending_task_count() == 2


def test_process_tasks_from_a_specific_queue():
    tasks.send_newsletter.enqueue()
    tasks.add.enqueue(1, 1)
    results = process_tasks(queue_name="emails", max_tasks=5)
    assert [r.task.module_path for r in results] == ["tests.tasks.send_newsletter"]


@pytest.mark.parametrize("max_tasks", [0, -1, "5", 2.5, True])
def test_process_tasks_refuses_a_bad_max_tasks(max_tasks):
    with pytest.raises(ValueError, match="max_tasks must be a positive integer"):
        process_tasks(max_tasks=max_tasks)


@pytest.mark.parametrize(
    ("queue_name", "error", "message"),
    [
        ("emails\x00", ValueError, "queue_name contains a NUL character"),
        ("emails\ud800", ValueError, "queue_name contains a lone surrogate"),
        (["emails"], TypeError, "queue_name must be a string or None"),
    ],
)
def test_a_queue_name_no_database_can_hold_is_a_clear_error(queue_name, error, message):
    tasks.send_newsletter.enqueue()
    for call in (process_tasks, process_one_task, get_pending_task_count):
        with pytest.raises(error, match=message):
            call(queue_name=queue_name)
    assert get_pending_task_count() == 1


def test_get_pending_task_count(capsys):
    tasks.add.enqueue(1, 1)
    tasks.add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 1)
    tasks.send_newsletter.enqueue()
    count = get_pending_task_count()
    print(f"Pending tasks: {count}")
    assert capsys.readouterr().out == "Pending tasks: 3\n"
    assert get_pending_task_count(queue_name="emails") == 1


def test_run_task_by_id_with_the_spec_id(capsys):
    tasks.add.enqueue(1, 2)
    DatabaseTask.objects.update(id="550e8400-e29b-41d4-a716-446655440000")
    result = run_task_by_id("550e8400-e29b-41d4-a716-446655440000")
    if result:
        print(f"Executed: {result.id}, status: {result.status}")
    assert capsys.readouterr().out == (
        "Executed: 550e8400-e29b-41d4-a716-446655440000, status: SUCCESSFUL\n"
    )


def test_run_task_by_id_does_not_rerun_a_finished_task():
    enqueued = tasks.add.enqueue(1, 2)
    assert run_task_by_id(enqueued.id).status == "SUCCESSFUL"
    assert run_task_by_id(enqueued.id) is None
    assert run_task_by_id(enqueued.id, allow_retry=True) is None


def test_retry_a_failed_task():
    enqueued = tasks.fail.enqueue()
    assert run_task_by_id(enqueued.id).status == "FAILED"
    assert run_task_by_id(enqueued.id) is None
    result = run_task_by_id(enqueued.id, allow_retry=True)
    assert result.status == "FAILED"
    assert result.attempts == 2
    assert len(result.errors) == 2


@pytest.mark.parametrize("task_id", [str(uuid.uuid4()), "malformed", ""])
def test_run_task_by_id_with_an_unknown_id_raises(task_id):
    with pytest.raises(TaskResultDoesNotExist):
        run_task_by_id(task_id)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(InvalidTaskBackend, match="'nope' is not configured"):
        process_one_task(backend_name="nope")


@override_settings(
    TASKS={
        "default": {"BACKEND": "django_database_task.backends.DatabaseTaskBackend"},
        "immediate": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    }
)
def test_a_backend_that_stores_nothing_is_a_clear_error():
    with pytest.raises(InvalidTaskBackend, match="not a DatabaseTaskBackend"):
        get_pending_task_count(backend_name="immediate")


def test_get_queue_stats():
    assert get_queue_stats() == {
        "ready": 0,
        "running": 0,
        "successful": 0,
        "failed": 0,
        "delayed": 0,
        "oldest_pending_since": None,
        "workers": 0,
    }
    first = tasks.add.enqueue(1, 1)
    tasks.add.enqueue(1, 1)
    tasks.add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 1)
    tasks.fail.using(priority=100).enqueue()
    process_one_task()
    stats = get_queue_stats()
    assert stats["ready"] == 3
    assert stats["failed"] == 1
    assert stats["delayed"] == 1
    assert stats["oldest_pending_since"] == first.enqueued_at
    assert get_queue_stats(queue_name="emails")["ready"] == 0


@override_settings(
    TASKS={
        "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
        "db": {"BACKEND": "django_database_task.backends.DatabaseTaskBackend"},
        "other": {"BACKEND": "django_database_task.backends.DatabaseTaskBackend"},
    }
)
def test_run_task_by_id_without_a_backend_runs_the_task_of_any_backend():
    """As django-database-task 0.x did: ids are UUIDs, the task knows its
    backend. Naming a backend still limits the search to it."""
    enqueued = tasks.add.using(backend="other").enqueue(20, 22)
    with pytest.raises(TaskResultDoesNotExist):
        run_task_by_id(enqueued.id, backend_name="db")
    result = run_task_by_id(enqueued.id)
    assert (result.status, result.return_value, result.backend) == (
        "SUCCESSFUL",
        42,
        "other",
    )
    assert run_task_by_id(enqueued.id) is None
    with pytest.raises(TaskResultDoesNotExist):
        run_task_by_id(str(uuid.uuid4()))
