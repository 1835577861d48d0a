"""Retries: a failed attempt runs again later while the task has attempts
left; every attempt's error is kept; the last failure is FAILED."""

from datetime import timedelta

import django
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_finished
from django.test import override_settings
from django.utils import timezone

from django_database_task import process_tasks, run_task_by_id
from django_database_task.models import DatabaseTask
from tests import tasks
from tests.factories import stored

pytestmark = pytest.mark.django_db

BACKEND = "django_database_task.backends.DatabaseTaskBackend"
DJANGO_61 = django.VERSION >= (6, 1)


def with_options(**options):
    return override_settings(
        TASKS={"default": {"BACKEND": BACKEND, "OPTIONS": options}}
    )


def run_due_now(result):
    """Run one attempt of the task now, however long its backoff says to wait."""
    DatabaseTask.objects.filter(pk=result.id).update(due_at=timezone.now())
    [ran] = process_tasks(max_tasks=1)
    assert ran.id == result.id
    return ran


@with_options(TASK_DEFAULTS={"max_attempts": 3, "retry_backoff": 10})
def test_a_failed_attempt_waits_its_backoff_then_runs_again_until_it_works():
    enqueued = tasks.flaky.enqueue("sync", failures=2)
    before = timezone.now()
    first = process_tasks()[0]
    assert first.status == "READY" and first.finished_at is None
    row = stored(enqueued)
    # Attempt 1 failed: back to READY, due within 10 s (full jitter from 0).
    assert row.status == "READY" and row.worker_id == ""
    assert before <= row.due_at <= timezone.now() + timedelta(seconds=10)
    second = run_due_now(enqueued)
    assert second.status == "READY"
    third = run_due_now(enqueued)
    assert (third.status, third.return_value, third.attempts) == ("SUCCESSFUL", 3, 3)
    assert [error.exception_class_path for error in third.errors] == [
        "builtins.ConnectionError",
        "builtins.ConnectionError",
    ]


@with_options(TASK_DEFAULTS={"max_attempts": 2, "retry_backoff": 0.001})
def test_the_last_failure_is_failed_with_every_error():
    enqueued = tasks.flaky.enqueue("down", failures=5)
    assert run_due_now(enqueued).status == "READY"
    last = run_due_now(enqueued)
    assert last.status == "FAILED" and last.finished_at is not None
    row = stored(enqueued)
    assert row.status == "FAILED" and len(row.worker_ids) == 2
    assert [e["traceback"].splitlines()[-1] for e in row.errors] == [
        "ConnectionError: call 1 for down failed",
        "ConnectionError: call 2 for down failed",
    ]


@with_options(
    TASK_DEFAULTS={"max_attempts": 4, "retry_backoff": 0.001},
    TASK_OPTIONS={"tests.tasks.flaky": {"retry_on": ["builtins.KeyError"]}},
)
def test_retry_on_limits_which_errors_retry():
    enqueued = tasks.flaky.enqueue("no-retry", failures=1)
    [result] = process_tasks()
    assert result.status == "FAILED" and result.attempts == 1
    assert stored(enqueued).status == "FAILED"


@with_options(TASK_DEFAULTS={"max_attempts": 3, "retry_backoff": 0.001})
def test_context_attempt_counts_up_and_async_tasks_retry_too():
    synchronous = tasks.flaky.enqueue("ctx", failures=1)
    asynchronous = tasks.async_flaky.enqueue("async", failures=2)
    for _ in range(3):
        DatabaseTask.objects.update(due_at=timezone.now())
        process_tasks()
    assert stored(synchronous).return_value == 2  # context.attempt of the success
    assert (stored(asynchronous).status, stored(asynchronous).return_value) == (
        "SUCCESSFUL",
        3,
    )
    assert len(stored(asynchronous).errors) == 2


@with_options(TASK_DEFAULTS={"max_attempts": 2, "retry_backoff": 0.001})
def test_task_finished_is_sent_once_per_attempt():
    seen = []

    def on_finished(sender, task_result, **kwargs):
        seen.append((task_result.status, task_result.attempts))

    task_finished.connect(on_finished)
    try:
        enqueued = tasks.flaky.enqueue("signals", failures=5)
        run_due_now(enqueued)
        run_due_now(enqueued)
    finally:
        task_finished.disconnect(on_finished)
    assert seen == [("READY", 1), ("FAILED", 2)]


def test_retries_are_off_by_default():
    tasks.flaky.enqueue("default", failures=1)
    [result] = process_tasks()
    assert result.status == "FAILED" and result.attempts == 1


@with_options(TASK_DEFAULTS={"max_attempts": 2, "retry_backoff": 0.001})
def test_allow_retry_counts_attempts_the_same_way():
    enqueued = tasks.flaky.enqueue("manual", failures=2)
    run_due_now(enqueued)
    assert run_due_now(enqueued).status == "FAILED"
    # A deliberate retry is one more attempt, past max_attempts.
    retried = run_task_by_id(enqueued.id, allow_retry=True)
    assert (retried.status, retried.attempts) == ("SUCCESSFUL", 3)


@with_options(
    TASK_DEFAULTS={"max_attempts": 7, "retry_backoff": 2, "retry_backoff_max": 9},
    TASK_OPTIONS={"tests.tasks.flaky": {"max_attempts": 2}},
)
def test_options_are_resolved_at_enqueue_time_per_path_then_defaults():
    flaky = stored(tasks.flaky.enqueue("x", failures=0))
    other = stored(tasks.add.enqueue(1, 2))
    assert (flaky.max_attempts, flaky.retry_backoff, flaky.retry_backoff_max) == (
        2,
        2.0,
        9.0,
    )
    assert other.max_attempts == 7


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"TASK_DEFAULTS": {"max_attempts": 0}}, "max_attempts must be a whole number"),
        ({"TASK_DEFAULTS": {"max_attempts": True}}, "max_attempts must be a whole"),
        ({"TASK_DEFAULTS": {"retry_backoff": -1}}, "retry_backoff must be a positive"),
        ({"TASK_DEFAULTS": {"retry_backoff": float("inf")}}, "must be a positive"),
        ({"TASK_DEFAULTS": {"retries": 3}}, "unknown option\\(s\\) retries"),
        ({"TASK_DEFAULTS": {"retry_on": ["no.such.Error"]}}, "retry_on cannot import"),
        ({"TASK_DEFAULTS": {"retry_on": ["tests.tasks.add"]}}, "exception classes"),
        ({"TASK_OPTIONS": ["tests.tasks.add"]}, "must map task paths"),
        ({"TASK_OPTIONS": {"tests.tasks.add": 3}}, "must be a dict of task options"),
        ({"HEARTBEAT_INTERVAL": 0}, "HEARTBEAT_INTERVAL must be a number"),
        ({"HEARTBEAT_INTERVAL": 10, "RESCUE_AFTER": 15}, "at least twice"),
    ],
)
def test_bad_options_are_clear_configuration_errors(options, message):
    with with_options(**options), pytest.raises(ImproperlyConfigured, match=message):
        task_backends["default"]


@pytest.mark.skipif(not DJANGO_61, reason="@task options need Django 6.1")
def test_task_decorator_options_on_django_61():
    from tests import tasks_options

    enqueued = tasks_options.flaky_connection.enqueue("decorated", failures=2)
    assert stored(enqueued).max_attempts == 3
    run_due_now(enqueued)
    run_due_now(enqueued)
    assert run_due_now(enqueued).status == "SUCCESSFUL"
    wrong = tasks_options.wrong_error.enqueue()
    assert process_tasks()[0].status == "FAILED"
    assert stored(wrong).max_attempts == 5


@pytest.mark.skipif(not DJANGO_61, reason="@task options need Django 6.1")
def test_a_bad_decorator_option_is_an_invalid_task():
    from django.tasks import task

    with pytest.raises(InvalidTask, match="max_attempts must be a whole number"):
        task(max_attempts=0)(tasks.fail_then_succeed)
