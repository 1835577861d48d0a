"""The check_database_tasks command: a health probe's exit status and lines."""

import os
import re
import socket
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.tasks import task_backends
from django.utils import timezone

from django_database_task.durations import format_duration
from django_database_task.engine import registry
from django_database_task.health import Limits, check_health
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests.endpoints import tasks_setting
from tests.processes import ROOT, LoggedWorker, free_port, wait_until

pytestmark = pytest.mark.django_db

HOST = socket.gethostname()


def check(*args: str, **options) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of the command, called in process."""
    out, err = StringIO(), StringIO()
    try:
        call_command("check_database_tasks", *args, stdout=out, stderr=err, **options)
    except SystemExit as e:
        return e.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def run_check(env: dict, *args: str) -> subprocess.CompletedProcess:
    """The command in a process of its own, as a probe runs it."""
    return subprocess.run(
        [sys.executable, "-m", "django", "check_database_tasks", *args],
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def task(
    due_minutes_ago: float,
    *,
    queue: str = "default",
    backend: str = "default",
    status: str = "READY",
) -> DatabaseTask:
    """A task due that many minutes ago (in the future when negative)."""
    due = timezone.now() - timedelta(minutes=due_minutes_ago)
    return DatabaseTask.objects.using(task_backends[backend].database).create(
        task_path="tests.tasks.add",
        queue_name=queue,
        backend_name=backend,
        status=status,
        enqueued_at=due,
        due_at=due,
    )


def worker(worker_id: str, *, host: str = HOST, seconds_ago: float = 0, **kwargs):
    """A registered worker of the default backend, last heard from
    ``seconds_ago``."""
    backend = task_backends["default"]
    registry.register(backend, worker_id, **kwargs)
    DatabaseTaskWorker.objects.filter(pk=worker_id).update(
        host=host, last_heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def test_healthy_with_a_live_worker_on_this_host():
    worker("here")
    task(-10)
    assert check("--this-host") == (
        0,
        f"OK: 1 live worker (1 on host {HOST}), 0 due tasks\n",
        "",
    )


def test_summary_counts_workers_and_due_tasks():
    worker("one")
    worker("two", host="elsewhere")
    task(2)
    task(0.5)
    status, out, _ = check()
    assert status == 0
    assert out == "OK: 2 live workers, 2 due tasks, oldest waiting 2m\n"


def test_verbosity_0_prints_nothing_on_success():
    worker("here")
    assert check("--this-host", verbosity=0) == (0, "", "")


def test_verbosity_0_still_reports_failures():
    status, out, err = check("--this-host", verbosity=0)
    assert (status, out) == (1, "")
    assert err == (
        f"no live worker on host {HOST} (backend 'default'): none registered "
        "(--this-host)\n"
    )


def test_a_dead_worker_on_this_host_is_unhealthy():
    worker("dead")
    registry.abandon(task_backends["default"], "dead")
    status, out, err = check("--this-host")
    assert (status, out) == (1, "")
    assert re.fullmatch(
        rf"no live worker on host {re.escape(HOST)} \(backend 'default'\): "
        r"last heartbeat \d+d( \d+[hms])? ago, more than 1m \(--this-host\)\n",
        err,
    )


def test_a_worker_silent_just_past_rescue_after_is_dead():
    rescue_after = task_backends["default"].rescue_after
    worker("silent", seconds_ago=rescue_after + 2)
    assert check("--this-host")[0] == 1
    DatabaseTaskWorker.objects.update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=rescue_after - 5)
    )
    assert check("--this-host")[0] == 0


def test_a_worker_on_another_host_does_not_keep_this_host_alive():
    worker("there", host="web-2")
    status, _, err = check("--this-host")
    assert status == 1
    assert f"no live worker on host {HOST} (backend 'default'): none" in err
    # It does count as a live worker of the backend.
    assert check("--min-workers", "1")[0] == 0


def test_max_heartbeat_age_tightens_the_host_check():
    worker("slow", seconds_ago=30)
    assert check("--this-host")[0] == 0
    status, _, err = check("--this-host", "--max-heartbeat-age", "20s")
    assert status == 1
    assert re.search(
        r"last heartbeat 3\ds ago, more than 20s \(--max-heartbeat-age\)\n$", err
    )
    assert check("--this-host", "--max-heartbeat-age", "1m")[0] == 0


def test_the_freshest_of_this_hosts_workers_counts():
    worker("dead", seconds_ago=3600)
    worker("live", seconds_ago=1)
    status, out, _ = check("--this-host")
    assert status == 0
    assert f"(1 on host {HOST})" in out


def test_min_workers_counts_live_workers_of_the_backend(settings):
    settings.TASKS = tasks_setting()
    worker("one")
    worker("dead", seconds_ago=3600)
    registry.register(task_backends["other"], "of-another-backend")
    assert check("--min-workers", "1")[0] == 0
    status, _, err = check("--min-workers", "2")
    assert status == 1
    assert err == (
        "backend 'default' has 1 live worker, fewer than 2 (--min-workers)\n"
    )
    assert check("--min-workers", "1", "--backend", "other")[0] == 0
    assert check("--min-workers", "2", "--backend", "other")[0] == 1


def test_min_workers_applies_to_each_queue():
    worker("all-queues")
    worker("emails-only", queues=["emails"])
    assert check("--queue", "emails", "--min-workers", "2")[0] == 0
    status, out, err = check("--queue", "emails,reports", "--min-workers", "2")
    assert status == 1
    assert err == "queue 'reports' has 1 live worker, fewer than 2 (--min-workers)\n"
    worker("reports-only", queues=["reports"])
    status, out, _ = check("--queue", "emails", "--queue", "reports", "--min-workers=2")
    assert (status, out) == (0, "OK: 3 live workers, 0 due tasks\n")


def test_this_host_needs_a_worker_serving_the_queues():
    worker("emails-only", queues=["emails"])
    assert check("--this-host", "--queue", "emails")[0] == 0
    status, _, err = check("--this-host", "--queue", "reports")
    assert status == 1
    assert err == (
        f"no live worker on host {HOST} (backend 'default', queues reports): "
        "none registered (--this-host)\n"
    )


def test_max_age_exceeded():
    task(12)
    task(1)
    status, out, err = check("--max-age", "5m")
    assert (status, out) == (1, "")
    assert re.fullmatch(
        r"oldest READY task has waited 12m( \ds)?, more than 5m \(--max-age\)\n", err
    )
    assert check("--max-age", "15m")[0] == 0


def test_backlog_exceeded():
    for _ in range(3):
        task(1)
    assert check("--max-backlog", "3")[0] == 0
    status, _, err = check("--max-backlog", "2")
    assert status == 1
    assert err == "backlog of 3 due tasks, more than 2 (--max-backlog)\n"


def test_max_backlog_0_means_no_due_task():
    assert check("--max-backlog", "0")[0] == 0
    task(0.1)
    assert check("--max-backlog", "0")[0] == 1


def test_delayed_and_finished_tasks_do_not_count():
    for _ in range(3):
        task(-60)
    task(600, status="RUNNING")
    task(600, status="SUCCESSFUL")
    task(600, status="FAILED")
    status, out, _ = check("--max-age", "1s", "--max-backlog", "0")
    assert (status, out) == (0, "OK: 0 live workers, 0 due tasks\n")


def test_queue_filter(settings):
    settings.TASKS = tasks_setting()
    task(30, queue="reports")
    task(30, queue="emails", backend="other")
    limits = ("--max-age", "1m", "--max-backlog", "0")
    assert check(*limits, "--queue", "emails")[0] == 0
    status, _, err = check(*limits, "--queue", "emails,reports")
    assert status == 1
    assert err.splitlines() == [
        "oldest READY task has waited 30m, more than 1m (--max-age)",
        "backlog of 1 due tasks, more than 0 (--max-backlog)",
    ]
    assert check(*limits, "--queue", "emails", "--backend", "other")[0] == 1


def test_every_failed_check_has_its_line():
    worker("elsewhere", host="web-2")
    task(120)
    task(60)
    status, _, err = check(
        "--this-host",
        "--min-workers=2",
        "--max-age=1h",
        "--max-backlog=1",
    )
    assert status == 1
    assert [line.rsplit(" (", 1)[1] for line in err.splitlines()] == [
        "--min-workers)",
        "--this-host)",
        "--max-age)",
        "--max-backlog)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--backend", "nope"), "Task backend 'nope' is not configured"),
        (("--backend", "immediate"), "is a ImmediateBackend, not a"),
        (("--max-age", "soon"), "--max-age must be a duration such as"),
        (("--max-age=-5m",), "--max-age must be a duration such as"),
        (("--max-age", "0"), "--max-age must be above 0 and at most 365d"),
        (("--max-age", "366d"), "at most 365d, not '366d'"),
        (("--max-age", "9" * 40), "--max-age must be a duration such as"),
        (("--this-host", "--max-heartbeat-age", "1.5m"), "must be a duration"),
        (("--this-host", "--max-heartbeat-age", "9s"), "at least 10s, twice the"),
        (("--max-heartbeat-age", "1m"), "add --this-host"),
        (("--min-workers", "-1"), "--min-workers must be 0 or more, not -1."),
        (("--max-backlog", "-1"), "--max-backlog must be 0 or more, not -1."),
        (("--queue", "a\x00"), "--queue contains a NUL character."),
        (("--queue", "\ud800"), "--queue contains a lone surrogate"),
    ],
)
def test_bad_options_exit_with_status_2(settings, args, message):
    settings.TASKS = tasks_setting()
    with pytest.raises(CommandError, match=re.escape(message)) as raised:
        check(*args)
    assert raised.value.returncode == 2


def test_a_queue_outside_the_backends_queues_is_a_bad_option(settings):
    settings.TASKS = {"default": tasks_setting()["default"] | {"QUEUES": ["emails"]}}
    assert check("--queue", "emails")[0] == 0
    with pytest.raises(CommandError, match="'reports' is not in the QUEUES") as raised:
        check("--queue", "emails,reports")
    assert raised.value.returncode == 2


def test_check_health_reports_what_it_saw():
    """The engine of the command, for endpoints and monitors."""
    worker("here")
    worker("there", host="web-2", queues=["emails"])
    task(3, queue="emails")
    health = check_health(
        task_backends["default"],
        Limits(min_workers=3, host="web-2", max_backlog=0),
        queue_names=["emails"],
    )
    assert not health.healthy
    assert (health.live_workers, health.host_workers, health.due) == (2, 1, 1)
    assert timedelta(minutes=3) < health.oldest_wait < timedelta(minutes=4)
    assert [problem.limit for problem in health.problems] == [
        "min_workers",
        "max_backlog",
    ]
    assert health.summary == "2 live workers (1 on host web-2), 1 due task, " + (
        f"oldest waiting {format_duration(health.oldest_wait)}"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "0s"),
        (-3, "0s"),
        (59, "59s"),
        (60, "1m"),
        (723, "12m 3s"),
        (7200, "2h"),
        (93_784, "1d 2h"),
        (86_405, "1d 5s"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(timedelta(seconds=seconds)) == text


@pytest.mark.django_db(transaction=True)
def test_exit_statuses_of_a_real_process(test_database_env):
    done = run_check(test_database_env, "--this-host")
    assert done.returncode == 1
    assert done.stderr == (
        f"no live worker on host {HOST} (backend 'default'): none registered "
        "(--this-host)\n"
    )
    worker("here")
    done = run_check(test_database_env, "--this-host", "--max-backlog", "0")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"OK: 1 live worker (1 on host {HOST}), 0 due tasks\n"
    done = run_check(test_database_env, "--this-host", "-v", "0")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    task(10)
    done = run_check(test_database_env, "--max-age", "5m", "-v", "0")
    assert done.returncode == 1
    assert done.stderr.startswith("oldest READY task has waited 10m")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-age", "soon"), "CommandError: --max-age must be a duration"),
        (("--backend", "nope"), "CommandError: Task backend 'nope' is not"),
        (("--queue", "a\udcff"), "CommandError: --queue contains a lone surrogate"),
        (("--min-workers", "x"), "argument --min-workers: invalid int value: 'x'"),
        (("--min-workers=-1",), "CommandError: --min-workers must be 0 or more"),
        (("--no-such-option",), "unrecognized arguments: --no-such-option"),
    ],
)
def test_bad_options_of_a_real_process_exit_with_status_2(
    test_database_env, args, message
):
    done = run_check(test_database_env, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_keeps_its_host_healthy_until_it_stops(
    test_database_env, tmp_path
):
    worker = LoggedWorker(test_database_env, tmp_path, "--continuous")
    try:
        wait_until(
            lambda: DatabaseTaskWorker.objects.filter(pid=worker.pid).exists(),
            timeout=30,
            workers=[worker],
            what="the worker's registration",
        )
        done = run_check(test_database_env, "--this-host", "--min-workers", "1")
        assert (done.returncode, done.stderr) == (0, "")
        assert worker.stop() == 0
    finally:
        worker.kill()
    done = run_check(test_database_env, "--this-host")
    assert done.returncode == 1
    assert "none registered" in done.stderr


def unreachable_urls() -> list:
    """A database URL per engine that nothing answers: a free port of
    127.0.0.1, and for SQLite a file in a missing directory."""
    port = free_port()
    return [
        pytest.param(f"postgres://postgres@127.0.0.1:{port}/ddt", id="postgres"),
        pytest.param(f"mysql://root@127.0.0.1:{port}/ddt", id="mysql"),
        pytest.param("sqlite:////nonexistent-ddt-directory/db.sqlite3", id="sqlite"),
    ]


@pytest.mark.parametrize("url", unreachable_urls())
def test_an_unreachable_database_exits_with_status_3(url):
    if url.startswith("mysql"):
        pytest.importorskip("MySQLdb")
    if url.startswith("postgres"):
        pytest.importorskip("psycopg")
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "DDT_TEST_DATABASE_NAME"
    }
    env |= {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = run_check(env, "--this-host", "--max-age", "5m")
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr.startswith(
        "database 'default' of backend 'default' cannot be queried: OperationalError: "
    )
    assert done.stderr.count("\n") == 1
