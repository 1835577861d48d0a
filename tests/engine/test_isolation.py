"""Sync tasks with a timeout run in a child process: same database, same
outcome, and killed when the timeout passes."""

import pytest
from django.test import override_settings

from django_database_task import process_tasks
from django_database_task.models import DatabaseTask
from tests import tasks
from tests.models import Span

pytestmark = pytest.mark.django_db(transaction=True)

BACKEND = "django_database_task.backends.DatabaseTaskBackend"
WITH_TIMEOUTS = override_settings(
    TASKS={
        "default": {
            "BACKEND": BACKEND,
            "OPTIONS": {"TASK_DEFAULTS": {"timeout": 5}},
        }
    }
)


@WITH_TIMEOUTS
def test_the_child_uses_the_workers_database_and_returns_the_value():
    tasks.timed_sleep.enqueue("in-child", 0)
    [result] = process_tasks()
    assert (result.status, result.return_value) == ("SUCCESSFUL", "in-child")
    assert Span.objects.filter(key="in-child").exists()


@WITH_TIMEOUTS
def test_the_childs_error_and_traceback_come_back():
    enqueued = tasks.fail.enqueue("from the child")
    [result] = process_tasks()
    assert result.status == "FAILED"
    error = DatabaseTask.objects.get(pk=enqueued.id).errors[0]
    assert error["exception_class_path"] == "builtins.ValueError"
    assert "raise ValueError(message)" in error["traceback"]
    assert "ValueError: from the child" in error["traceback"]


@WITH_TIMEOUTS
def test_an_exception_that_cannot_be_pickled_still_fails_the_task_clearly():
    enqueued = tasks.raise_unpicklable.enqueue()
    [result] = process_tasks()
    assert result.status == "FAILED"
    error = DatabaseTask.objects.get(pk=enqueued.id).errors[0]
    assert error["exception_class_path"] == "tests.tasks.Unpicklable"
    assert "Unpicklable: cannot travel" in error["traceback"]


@override_settings(
    TASKS={
        "default": {
            "BACKEND": BACKEND,
            "OPTIONS": {"TASK_OPTIONS": {"tests.tasks.timed_sleep": {"timeout": 0.5}}},
        }
    }
)
def test_past_its_timeout_the_child_is_killed():
    enqueued = tasks.timed_sleep.enqueue("too-slow", 3)
    [result] = process_tasks()
    assert result.status == "FAILED"
    error = DatabaseTask.objects.get(pk=enqueued.id).errors[0]
    assert error["exception_class_path"] == (
        "django_database_task.engine.executor.TaskTimeout"
    )
    assert "timeout of 0.5 s; its process was killed" in error["traceback"]
    assert not Span.objects.exists()
