"""Status changes made on purpose, and above all: a cancelled task never runs
again unless a person retries it."""

import pytest
from django.test import override_settings

from django_database_task import process_tasks, run_task_by_id
from django_database_task.backends import DatabaseTaskBackend
from django_database_task.engine import transitions
from django_database_task.models import DatabaseTask
from tests import tasks
from tests.factories import make_task, stored

pytestmark = pytest.mark.django_db


def cancel(*tasks_to_cancel) -> int:
    selection = DatabaseTask.objects.filter(pk__in=[t.pk for t in tasks_to_cancel])
    return transitions.cancel(selection, "Cancelled by a test.")


def test_cancel_fails_ready_tasks_with_a_mark_and_the_reason():
    ready, running = make_task(), make_task(status="RUNNING")
    assert cancel(ready, running) == 1
    cancelled = stored(ready)
    assert cancelled.status == "FAILED"
    assert cancelled.cancelled_at == cancelled.finished_at is not None
    assert cancelled.errors[-1]["exception_class_path"] == transitions.CANCELLED_PATH
    assert "Cancelled by a test." in cancelled.errors[-1]["traceback"]
    assert stored(running).status == "RUNNING" and stored(running).cancelled_at is None


def test_allow_retry_never_runs_a_cancelled_task():
    task = make_task()
    cancel(task)
    assert run_task_by_id(str(task.pk), allow_retry=True) is None
    assert process_tasks() == []
    assert stored(task).status == "FAILED" and stored(task).worker_ids == []


def test_allow_retry_still_runs_a_task_that_failed_by_itself():
    failed = tasks.fail.enqueue()
    run_task_by_id(failed.id)
    assert run_task_by_id(failed.id, allow_retry=True).attempts == 2


def test_a_deliberate_retry_clears_the_mark_and_runs_the_task():
    task = make_task(args=[2, 3])
    cancel(task)
    assert transitions.retry(DatabaseTask.objects.filter(pk=task.pk)) == 1
    assert stored(task).status == "READY" and stored(task).cancelled_at is None
    [result] = process_tasks()
    assert result.status == "SUCCESSFUL" and result.return_value == 5
    # The cancellation stays in the task's history.
    assert result.errors[0].exception_class_path == transitions.CANCELLED_PATH


def test_retry_requeue_and_make_due_only_touch_the_status_they_expect():
    failed, running, ready = (
        make_task(status="FAILED"),
        make_task(status="RUNNING"),
        make_task(),
    )
    everything = DatabaseTask.objects.all()
    assert transitions.retry(everything) == 1
    assert transitions.requeue(everything) == 1
    assert transitions.make_due(everything) == 3
    assert {stored(t).status for t in (failed, running, ready)} == {"READY"}


class RecordingBackend(DatabaseTaskBackend):
    """Remembers what it was told was cancelled."""

    told: list[list[str]] = []

    def on_tasks_cancelled(self, task_ids):
        self.told.append(sorted(task_ids))


@override_settings(
    TASKS={"default": {"BACKEND": "tests.engine.test_transitions.RecordingBackend"}}
)
def test_the_backend_is_told_which_tasks_were_cancelled():
    RecordingBackend.told.clear()
    first, second, done = make_task(), make_task(), make_task(status="SUCCESSFUL")
    cancel(first, second, done)
    assert RecordingBackend.told == [sorted([str(first.pk), str(second.pk)])]
    cancel(first)
    assert len(RecordingBackend.told) == 1
