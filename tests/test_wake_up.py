"""Idle worker processes wake up on time: at once for a task enqueued on
PostgreSQL (NOTIFY/LISTEN, also behind PgBouncer) or SQLite (a watch on the
file), and when a delayed task becomes due on every database, however long
their polling interval."""

import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone

from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks
from tests.factories import status_of, stored
from tests.models import Execution
from tests.pgbouncer import PgBouncer
from tests.processes import (
    LoggedWorker,
    backend_options,
    free_port,
    run_django,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.acceptance]

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="NOTIFY/LISTEN is PostgreSQL's"
)
# Enqueue to start for a woken worker: a behaviour bound, not a target.
AT_ONCE = timedelta(seconds=2)


def idle(worker: LoggedWorker, count: int = 1) -> None:
    """Until ``count`` workers are registered and have had time to fall
    asleep (a task enqueued before that is claimed anyway)."""
    wait_until(
        lambda: DatabaseTaskWorker.objects.count() >= count,
        timeout=30,
        workers=[worker],
        what="the worker to register",
    )
    time.sleep(1)


def started_after_enqueue(result) -> timedelta:
    wait_until(
        lambda: status_of(result) == TaskResultStatus.SUCCESSFUL,
        timeout=30,
        what=f"task {result.id} to run",
    )
    row = stored(result)
    return row.started_at - row.enqueued_at


@pytest.mark.skipif(connection.vendor == "mysql", reason="MySQL/MariaDB workers poll")
def test_a_committed_enqueue_wakes_an_idle_worker_at_once(test_database_env, tmp_path):
    worker = LoggedWorker(
        test_database_env, tmp_path, "--continuous", "--interval", "60"
    )
    try:
        idle(worker)
        for number in range(3):
            assert started_after_enqueue(tasks.record.enqueue(f"a{number}")) < AT_ONCE
    finally:
        worker.stop()
    assert "LISTEN" not in worker.errors()


@on_postgresql
def test_a_notification_for_another_queue_claims_nothing(test_database_env, tmp_path):
    worker = LoggedWorker(
        test_database_env,
        tmp_path,
        "--continuous",
        "--interval",
        "60",
        "--queue",
        "default",
    )
    try:
        idle(worker)
        other = tasks.record.using(queue_name="mail").enqueue("other")
        time.sleep(1.5)
        assert status_of(other) == TaskResultStatus.READY
        assert started_after_enqueue(tasks.record.enqueue("served")) < AT_ONCE
        assert status_of(other) == TaskResultStatus.READY
    finally:
        worker.stop()


def test_a_delayed_task_starts_when_due_despite_a_long_interval(
    test_database_env, tmp_path
):
    due = timezone.now() + timedelta(seconds=2)
    delayed = tasks.record.using(run_after=due).enqueue("delayed")
    worker = LoggedWorker(
        test_database_env, tmp_path, "--continuous", "--interval", "60"
    )
    try:
        wait_until(
            lambda: status_of(delayed) == TaskResultStatus.SUCCESSFUL,
            timeout=10,
            workers=[worker],
            what="the delayed task to run",
        )
    finally:
        worker.stop()
    started = stored(delayed).started_at
    assert due <= started < due + timedelta(seconds=1)


@on_postgresql
def test_a_task_delayed_while_the_worker_sleeps_starts_when_due(
    test_database_env, tmp_path
):
    worker = LoggedWorker(
        test_database_env, tmp_path, "--continuous", "--interval", "60"
    )
    try:
        idle(worker)
        due = timezone.now() + timedelta(seconds=2)
        delayed = tasks.record.using(run_after=due).enqueue("delayed")
        wait_until(
            lambda: status_of(delayed) == TaskResultStatus.SUCCESSFUL,
            timeout=10,
            workers=[worker],
            what="the delayed task to run",
        )
    finally:
        worker.stop()
    started = stored(delayed).started_at
    assert due <= started < due + timedelta(seconds=1)


@on_postgresql
def test_without_listen_the_worker_logs_once_and_polls(
    test_database_env, tmp_path, settings
):
    unreachable = {"direct": {"PORT": str(free_port())}}
    env = backend_options(
        settings,
        test_database_env | {"DDT_TEST_DATABASES": json.dumps(unreachable)},
        LISTEN_DATABASE="direct",
    )
    worker = LoggedWorker(env, tmp_path, "--continuous", "--interval", "1")
    try:
        idle(worker)
        results = []
        for number in range(3):
            results.append(tasks.record.enqueue(f"polled{number}"))
            time.sleep(1)
        for result in results:
            started_after_enqueue(result)
    finally:
        worker.stop()
    log = worker.output() + worker.errors()
    assert log.count("cannot LISTEN on database 'direct'") == 1, log


@pytest.fixture
def pgbouncer():
    missing = PgBouncer.missing()
    if missing:
        pytest.skip(missing)
    bouncer = PgBouncer(server_port=int(connection.settings_dict["PORT"] or 5432))
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.destroy()


def through(bouncer: PgBouncer, env: dict, **aliases: dict) -> dict:
    """``env`` with the workers' default alias going through ``bouncer``."""
    default = {"PORT": str(bouncer.port), "DISABLE_SERVER_SIDE_CURSORS": True}
    return env | {"DDT_TEST_DATABASES": json.dumps({"default": default} | aliases)}


def run_exactly_once(count: int) -> None:
    wait_until(
        lambda: DatabaseTask.objects.filter(status="SUCCESSFUL").count() == count,
        timeout=120,
        what=f"{count} tasks to run",
    )
    assert Execution.objects.count() == count
    assert not Execution.objects.filter(duplicates__gt=0).exists()
    attempts = DatabaseTask.objects.values_list("worker_ids", flat=True)
    assert all(len(worker_ids) == 1 for worker_ids in attempts)


@on_postgresql
def test_behind_pgbouncer_workers_listen_on_a_direct_alias(
    test_database_env, tmp_path, settings, pgbouncer
):
    env = backend_options(
        settings,
        through(pgbouncer, test_database_env, direct={}),
        LISTEN_DATABASE="direct",
    )
    for number in range(300):
        tasks.record.enqueue(f"backlog{number}")
    workers = [
        LoggedWorker(env, tmp_path, "--continuous", "--interval", "60")
        for _ in range(2)
    ]
    try:
        run_exactly_once(300)
        idle(workers[0], count=2)
        run_django(
            env, "shell", "-c", "from tests import tasks; tasks.record.enqueue('woken')"
        )
        woken = DatabaseTask.objects.get(args=["woken"])
        assert started_after_enqueue(woken) < AT_ONCE
        run_exactly_once(301)
    finally:
        for worker in workers:
            worker.stop()
    log = "".join(worker.output() + worker.errors() for worker in workers)
    assert "LISTEN" not in log


@on_postgresql
def test_behind_pgbouncer_with_listen_off_workers_poll(
    test_database_env, tmp_path, settings, pgbouncer
):
    env = backend_options(settings, through(pgbouncer, test_database_env), LISTEN=False)
    for number in range(100):
        tasks.record.enqueue(f"backlog{number}")
    workers = [
        LoggedWorker(env, tmp_path, "--continuous", "--interval", "1") for _ in range(2)
    ]
    try:
        run_exactly_once(100)
        run_django(
            env, "shell", "-c", "from tests import tasks; tasks.record.enqueue('late')"
        )
        run_exactly_once(101)
    finally:
        for worker in workers:
            worker.stop()
