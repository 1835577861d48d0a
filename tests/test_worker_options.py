"""The options of run_database_tasks for processes, exit codes and reload:
refused before anything runs, and passed on to the worker processes."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from django_database_task.management.commands.run_database_tasks import Command
from django_database_task.management.worker_options import (
    child_command,
    child_environment,
)
from django_database_task.models import DatabaseTask
from tests import tasks

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("run_database_tasks", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--processes", "0"], "--processes must be from 1 to 64, not 0"),
        (["--processes", "-2"], "--processes must be from 1 to 64, not -2"),
        (["--processes", "65"], "--processes must be from 1 to 64, not 65"),
        (["--processes", str(10**12)], "--processes must be from 1 to 64"),
        (
            ["--processes", "2", "--max-tasks", "5"],
            "--max-tasks limits one worker process; with --processes use "
            "--max-tasks-per-child",
        ),
        (
            ["--processes", "2", "--max-tasks-per-child", "-1"],
            "--max-tasks-per-child must be 0 \\(never\\) or more, not -1",
        ),
        (["--max-tasks-per-child", "5"], "--max-tasks-per-child needs --processes"),
        (
            ["--processes", "2", "--max-memory-per-child", "15"],
            "--max-memory-per-child must be 0 \\(never\\) or from 16 to 1048576 MiB",
        ),
        (
            ["--processes", "2", "--max-memory-per-child", "-100"],
            "--max-memory-per-child must be 0",
        ),
        (
            ["--processes", "2", "--max-memory-per-child", str(2**21)],
            f"from 16 to 1048576 MiB, not {2**21}",
        ),
        (["--max-memory-per-child", "500"], "--max-memory-per-child needs --processes"),
        (
            ["--empty-exit-code", "-1"],
            "--empty-exit-code must be from 0 \\(off\\) to 255",
        ),
        (["--empty-exit-code", "256"], "--empty-exit-code must be from 0"),
        (["--failed-exit-code", "-3"], "--failed-exit-code must be from 0"),
        (["--failed-exit-code", "1000"], "to 255, not 1000"),
        (
            ["--reload", "--continuous", "--processes", "2"],
            "--reload restarts one worker in development; it cannot be combined "
            "with --processes",
        ),
        (["--reload"], "--reload needs --continuous"),
        (
            ["--reload", "--continuous", "--empty-exit-code", "3"],
            "--empty-exit-code and --failed-exit-code are for schedulers",
        ),
        (
            ["--reload", "--continuous", "--failed-exit-code", "3"],
            "--empty-exit-code and --failed-exit-code are for schedulers",
        ),
    ],
)
def test_bad_options_are_clear_errors_and_run_nothing(args, message):
    tasks.add.enqueue(1, 1)
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert DatabaseTask.objects.get().status == "READY"


@pytest.mark.parametrize(
    "args",
    [
        ["--processes", "two"],
        ["--max-tasks-per-child", "1.5"],
        ["--max-memory-per-child", "1G"],
        ["--empty-exit-code", "yes"],
    ],
)
def test_non_numeric_options_are_refused_by_the_parser(args):
    with pytest.raises(CommandError, match="invalid int value"):
        run(*args)


def test_processes_need_a_settings_module(settings):
    settings.SETTINGS_MODULE = None
    with pytest.raises(CommandError, match="settings configured in code have none"):
        run("--processes", "2")


def test_an_empty_run_exits_with_the_empty_exit_code():
    with pytest.raises(SystemExit) as exit:
        run("--empty-exit-code", "3")
    assert exit.value.code == 3
    assert run("--empty-exit-code", "0").endswith("Processed 0 task(s).\n")


def test_a_failed_task_gives_the_failed_exit_code_a_retried_one_does_not(settings):
    retried = {"max_attempts": 2, "retry_backoff": 60}
    settings.TASKS = settings.TASKS | {
        "default": settings.TASKS["default"]
        | {"OPTIONS": {"TASK_OPTIONS": {"tests.tasks.flaky": retried}}}
    }
    tasks.flaky.enqueue("once", 1)
    # Its first attempt fails and is retried later: READY, not FAILED.
    assert run("--failed-exit-code", "4").endswith("Processed 1 task(s).\n")
    tasks.fail.enqueue()
    with pytest.raises(SystemExit) as exit:
        run("--failed-exit-code", "4")
    assert exit.value.code == 4


def parse(*args: str) -> dict:
    return vars(
        Command().create_parser("manage.py", "run_database_tasks").parse_args(args)
    )


def test_children_get_the_worker_options_and_not_the_supervisors():
    options = parse(
        *("--processes", "4", "--continuous", "--interval", "0.5"),
        *("--concurrency", "8", "--shutdown-timeout", "12", "--backend", "default"),
        *("--max-tasks-per-child", "30", "--max-memory-per-child", "300"),
        *("--empty-exit-code", "3", "--failed-exit-code", "4", "-v", "2"),
        "--traceback",
    )
    command = child_command(options, ["emails", "-odd"])
    assert command[1:4] == ["-m", "django", "run_database_tasks"]
    assert command[4:] == [
        "--backend=default",
        "--interval=0.5",
        "--concurrency=8",
        "--shutdown-timeout=12.0",
        "--verbosity=2",
        "--skip-checks",
        "--queue=emails",
        "--queue=-odd",
        "--continuous",
        "--max-tasks=30",
        "--max-memory-per-child=300",
        "--traceback",
    ]
    # What the child's own parser makes of it.
    assert parse(*command[4:])["queue"] == ["emails", "-odd"]


def test_children_find_the_settings_module_and_the_import_path(settings):
    environment = child_environment()
    assert environment["DJANGO_SETTINGS_MODULE"] == "tests.settings"
    assert str(tasks.__file__).startswith(tuple(environment["PYTHONPATH"].split(":")))
