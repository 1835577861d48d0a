"""Running a claimed task: results, errors and signals, as ImmediateBackend."""

import logging
import sys

import pytest
from django.tasks import TaskResultStatus, default_task_backend, task_backends
from django.tasks.signals import task_finished, task_started

from django_database_task import process_one_task, process_tasks
from django_database_task.backends import DatabaseTaskBackend
from django_database_task.models import DatabaseTask
from tests import tasks

pytestmark = pytest.mark.django_db


def run(task, *args, **kwargs):
    enqueued = task.enqueue(*args, **kwargs)
    result = process_one_task()
    assert result.id == enqueued.id
    return result, DatabaseTask.objects.get(pk=enqueued.id)


def test_successful_task_stores_its_return_value():
    result, row = run(tasks.add, 2, 3)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert row.status == "SUCCESSFUL"
    assert row.return_value == 5
    assert row.finished_at >= row.started_at
    assert row.errors == []
    assert len(row.worker_ids) == 1


def test_failed_task_stores_exception_class_and_traceback():
    result, row = run(tasks.fail, "no luck")
    assert result.status == TaskResultStatus.FAILED
    [error] = result.errors
    assert error.exception_class is ValueError
    assert "no luck" in error.traceback
    assert row.status == "FAILED"
    assert row.errors[0]["exception_class_path"] == "builtins.ValueError"
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value


def test_system_exit_in_a_task_fails_the_task_not_the_worker():
    result, _ = run(tasks.exit_task)
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "builtins.SystemExit"


def test_non_json_return_value_fails_with_a_clear_error():
    result, row = run(tasks.returns_datetime)
    assert result.status == TaskResultStatus.FAILED
    assert row.errors[0]["exception_class_path"] == "builtins.TypeError"
    assert (
        "Unsupported type: <class 'datetime.datetime'> in the task's return value"
        in (row.errors[0]["traceback"])
    )


def test_context_reports_the_attempt():
    result, _ = run(tasks.with_context, "hello")
    assert result.return_value == f"Task {result.id} (attempt 1): hello"


def test_async_task_runs():
    result, _ = run(tasks.async_add, 20, 22)
    assert result.return_value == 42


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("tests.tasks.renamed_long_ago", "could not be imported"),
        ("no_such_module.tasks.job", "could not be imported"),
        ("tests.tasks.not_a_task", "names a str, not a Task"),
    ],
)
def test_task_that_no_longer_imports_fails_and_the_worker_goes_on(path, reason):
    broken = tasks.add.enqueue(1, 1)
    DatabaseTask.objects.filter(pk=broken.id).update(task_path=path, priority=1)
    healthy = tasks.add.enqueue(2, 2)

    result = process_one_task()
    assert result.id == broken.id
    assert result.status == TaskResultStatus.FAILED
    assert result.task.module_path == path
    row = DatabaseTask.objects.get(pk=broken.id)
    assert row.errors[0]["exception_class_path"] == (
        "django_database_task.results.TaskNotImportable"
    )
    assert reason in row.errors[0]["traceback"]
    assert process_one_task().id == healthy.id


@pytest.mark.parametrize(
    ("path", "real_error"),
    [
        (
            "tests.broken.raises_runtime_error.job",
            "RuntimeError: the deploy forgot a setting",
        ),
        ("tests.broken.syntax_error.job", "SyntaxError"),
    ],
)
def test_a_module_that_fails_on_import_fails_its_task_with_the_real_error(
    path, real_error
):
    broken = tasks.add.enqueue(1, 1)
    DatabaseTask.objects.filter(pk=broken.id).update(task_path=path, priority=1)
    healthy = tasks.add.enqueue(2, 2)

    first, second = process_tasks()
    assert (first.id, first.status) == (broken.id, TaskResultStatus.FAILED)
    error = DatabaseTask.objects.get(pk=broken.id).errors[0]
    assert error["exception_class_path"] == (
        "django_database_task.results.TaskNotImportable"
    )
    assert real_error in error["traceback"]
    assert (second.id, second.status) == (healthy.id, TaskResultStatus.SUCCESSFUL)
    # Reading the result back does not raise either.
    assert default_task_backend.get_result(broken.id).status == "FAILED"


def test_task_finished_is_sent_while_the_exception_is_being_handled(caplog):
    """As in ImmediateBackend, so that Django's own log line of a failure
    (and any Sentry-style receiver) carries the exception and traceback."""
    seen = []

    def on_finished(sender, task_result, **kwargs):
        seen.append(sys.exc_info()[1])

    task_finished.connect(on_finished)
    try:
        with caplog.at_level(logging.ERROR, logger="django.tasks"):
            failed, _ = run(tasks.fail, "no stock")
            succeeded, _ = run(tasks.add, 1, 1)
    finally:
        task_finished.disconnect(on_finished)
    assert isinstance(seen[0], ValueError) and str(seen[0]) == "no stock"
    assert seen[1] is None
    [record] = [r for r in caplog.records if r.name == "django.tasks"]
    assert f"Task id={failed.id}" in record.getMessage()
    assert record.exc_info[0] is ValueError
    assert "raise ValueError(message)" in caplog.text


def test_signals_are_sent_with_the_backend_as_sender():
    seen = []

    def on_started(sender, task_result, **kwargs):
        seen.append(("started", sender, task_result.status))

    def on_finished(sender, task_result, **kwargs):
        stored = DatabaseTask.objects.get(pk=task_result.id).status
        seen.append(("finished", sender, task_result.status, stored))

    task_started.connect(on_started)
    task_finished.connect(on_finished)
    try:
        run(tasks.add, 1, 1)
    finally:
        task_started.disconnect(on_started)
        task_finished.disconnect(on_finished)
    assert seen == [
        ("started", DatabaseTaskBackend, TaskResultStatus.RUNNING),
        ("finished", DatabaseTaskBackend, TaskResultStatus.SUCCESSFUL, "SUCCESSFUL"),
    ]


def test_a_task_requeued_while_running_keeps_its_new_status():
    from django_database_task.engine.claim import claim_tasks
    from django_database_task.engine.completer import store
    from django_database_task.engine.executor import execute

    tasks.add.enqueue(1, 1)
    [row] = claim_tasks(using="default", backend_name="default", worker_id="w")
    outcome = execute(row, task_backends["default"])
    DatabaseTask.objects.filter(pk=row.pk).update(status="READY")
    store(outcome, using="default")
    assert DatabaseTask.objects.get(pk=row.pk).status == "READY"
