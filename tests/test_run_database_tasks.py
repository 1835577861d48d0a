"""The run_database_tasks command and its options, run in-process."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from django_database_task.models import DatabaseTask
from tests import tasks
from tests.factories import status_of

pytestmark = pytest.mark.django_db


def run(*args):
    return run_both(*args)[0]


def run_both(*args) -> tuple[str, str]:
    """The command's stdout and stderr (failures go to stderr)."""
    out, err = StringIO(), StringIO()
    call_command("run_database_tasks", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_run_once_until_no_tasks_are_due():
    done = tasks.add.enqueue(1, 2)
    failed = tasks.fail.enqueue()
    later = tasks.add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 1)
    output, errors = run_both()
    assert f"SUCCESSFUL {done.id} tests.tasks.add" in output
    assert errors == f"FAILED {failed.id} tests.tasks.fail\n"
    assert output.endswith("Processed 2 task(s).\n")
    assert status_of(later) == "READY"


def test_queue_option_runs_only_that_queue():
    newsletter = tasks.send_newsletter.enqueue()
    other = tasks.add.enqueue(1, 1)
    run("--queue", "emails")
    assert status_of(newsletter) == "SUCCESSFUL"
    assert status_of(other) == "READY"


def test_several_queues():
    newsletter = tasks.send_newsletter.enqueue()
    other = tasks.add.enqueue(1, 1)
    run("--queue", "emails,default")
    assert status_of(newsletter) == status_of(other) == "SUCCESSFUL"


def test_max_tasks_option():
    for i in range(3):
        tasks.add.enqueue(i, i)
    assert run("--max-tasks", "2").endswith("Processed 2 task(s).\n")
    assert DatabaseTask.objects.filter(status="READY").count() == 1


def test_continuous_with_max_tasks_waits_for_work_and_stops_at_the_limit():
    tasks.add.enqueue(1, 1)
    assert run("--continuous", "--interval", "0.01", "--max-tasks", "1").endswith(
        "Processed 1 task(s).\n"
    )


@override_settings(
    TASKS={
        "default": {"BACKEND": "django_database_task.backends.DatabaseTaskBackend"},
        "secondary": {
            "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
            "QUEUES": [],
        },
    }
)
def test_backend_option_runs_only_that_backends_tasks():
    primary = tasks.add.enqueue(1, 1)
    secondary = tasks.send_newsletter.using(backend="secondary").enqueue()
    run("--backend", "secondary")
    assert status_of(secondary) == "SUCCESSFUL"
    assert status_of(primary) == "READY"


@override_settings(
    TASKS={
        "default": {
            "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
            "QUEUES": ["default"],
        },
        "immediate": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    }
)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "missing"], "'missing' is not configured in TASKS"),
        (["--backend", "immediate"], "not a DatabaseTaskBackend"),
        (["--queue", "emails"], "Queue 'emails' is not in the QUEUES"),
        (["--interval", "0"], "--interval must be a number of seconds above 0"),
        (["--interval", "-5"], "--interval must be a number of seconds above 0"),
        (["--interval", "nan"], "--interval must be a number of seconds above 0"),
        (["--interval", "inf"], "and at most 86400, not inf"),
        # An argument that is not valid UTF-8 arrives with a lone surrogate.
        (["--queue", "emails\udcff"], "--queue contains a lone surrogate"),
        (["--max-tasks", "-1"], "--max-tasks must be 0 \\(unlimited\\) or more"),
    ],
)
def test_bad_options_are_clear_errors(args, message):
    tasks.add.enqueue(1, 1)
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert DatabaseTask.objects.get().status == "READY"


@pytest.mark.parametrize(
    "args", [["--interval", "soon"], ["--max-tasks", "many"], ["--max-tasks", "1.5"]]
)
def test_non_numeric_options_are_refused_by_the_parser(args):
    with pytest.raises(CommandError, match="invalid"):
        run(*args)


def test_verbosity_0_prints_only_failures_on_stderr():
    tasks.add.enqueue(1, 2)
    failed = tasks.fail.enqueue()
    out, err = StringIO(), StringIO()
    call_command("run_database_tasks", verbosity=0, stdout=out, stderr=err)
    assert out.getvalue() == ""
    assert err.getvalue() == f"FAILED {failed.id} tests.tasks.fail\n"
    assert DatabaseTask.objects.filter(status="READY").count() == 0


def test_verbosity_2_adds_attempt_duration_and_error():
    done = tasks.add.enqueue(1, 2)
    failed = tasks.fail.enqueue()
    output, errors = run_both("-v", "2")
    assert f"STARTED {done.id} tests.tasks.add attempt=1\n" in output
    assert re.search(
        rf"SUCCESSFUL {done.id} tests.tasks.add attempt=1 duration=\d+\.\d{{3}}s\n",
        output,
    )
    assert re.search(
        rf"^FAILED {failed.id} tests.tasks.fail attempt=1 duration=\d+\.\d{{3}}s "
        r"error=builtins.ValueError\n",
        errors,
    )
