"""Waking idle workers: what an enqueue NOTIFYs on PostgreSQL, what a
worker's listener makes of it, what a SQLite worker's watcher sees, and when
the next delayed task is due."""

import json
import logging
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.tasks import task_backends
from django.utils import timezone

from django_database_task.backends import DatabaseTaskBackend
from django_database_task.engine import listener
from django_database_task.sql import TABLE, channel_name, dialect_for
from tests import tasks

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="NOTIFY/LISTEN is PostgreSQL's"
)
on_sqlite = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PRAGMA data_version is SQLite's"
)


@pytest.fixture
def heard():
    """What a LISTEN connection of the test's own receives on the default
    backend's channel, as a function reading it for a moment."""
    import psycopg

    params = connection.get_connection_params()
    listening = psycopg.connect(**params, autocommit=True)
    listening.execute('LISTEN "ddt_default"')

    def read(seconds: float = 0.3) -> list[str]:
        return [notify.payload for notify in listening.notifies(timeout=seconds)]

    yield read
    listening.close()


def test_a_channel_is_an_identifier_within_63_bytes():
    assert channel_name("default") == "ddt_default"
    assert channel_name("Mail-Out.eu") == "ddt_mail_out_eu"
    assert len(channel_name("x" * 100)) == 63


def test_listen_options_are_checked():
    with pytest.raises(ImproperlyConfigured, match="LISTEN must be True or False"):
        DatabaseTaskBackend("default", {"OPTIONS": {"LISTEN": "yes"}})
    missing = DatabaseTaskBackend("default", {"OPTIONS": {"LISTEN_DATABASE": "x"}})
    assert [error.id for error in missing.check()] == ["django_database_task.E003"]
    off = {"LISTEN": False, "LISTEN_DATABASE": "x"}
    assert not list(DatabaseTaskBackend("default", {"OPTIONS": off}).check())


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_committed_enqueue_notifies_its_queue(heard):
    tasks.record.enqueue("a")
    tasks.record.using(queue_name="mail").enqueue("b")
    assert heard() == ["default", "mail"]


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_enqueue_notifies_no_one(heard):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        tasks.record.enqueue("a")
        1 / 0  # noqa: B018
    with transaction.atomic():
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            tasks.record.using(queue_name="mail").enqueue("b")
            1 / 0  # noqa: B018
        tasks.record.enqueue("c")
    assert heard() == ["default"]


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_transaction_notifies_each_queue_once(heard):
    with transaction.atomic():
        for number in range(100):
            tasks.record.enqueue(f"a{number}")
            tasks.record.using(queue_name="mail").enqueue(f"b{number}")
    task_backends["default"].bulk_enqueue(tasks.record, [(["c"], {})] * 100)
    assert heard() == ["default", "mail", "default"]


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_with_listen_off_nothing_is_notified(heard, settings):
    settings.TASKS = {
        "default": settings.TASKS["default"] | {"OPTIONS": {"LISTEN": False}}
    }
    tasks.record.enqueue("a")
    task_backends["default"].bulk_enqueue(tasks.record, [(["b"], {})])
    assert heard() == []
    assert listener.for_worker(task_backends["default"], (), "w") is None


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_listener_reports_only_the_queues_it_serves():
    served = listener.for_worker(task_backends["default"], ["mail"], "w")
    assert served is not None
    try:
        assert served.drain()  # Connected: what came before went unheard.
        assert served.fileno() is not None
        assert not served.drain()
        tasks.record.enqueue("a")
        time.sleep(0.2)
        assert not served.drain()
        tasks.record.using(queue_name="mail").enqueue("b")
        time.sleep(0.2)
        assert served.drain()
        assert not served.drain()
    finally:
        served.close()


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_lost_connection_is_logged_once_and_made_again(caplog):
    served = listener.for_worker(task_backends["default"], (), "w")
    assert served is not None and served.drain()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN %%' AND pid <> pg_backend_pid()"
        )
    deadline = time.monotonic() + 10
    with caplog.at_level(logging.WARNING, "django_database_task.worker"):
        while served.fileno() is not None and time.monotonic() < deadline:
            served.drain()
            time.sleep(0.05)
        assert served.fileno() is None
        assert not served.drain()  # Not yet: it waits before trying again.
        served._retry_at = 0.0
        assert served.drain()
    served.close()
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [
        "Worker w cannot LISTEN on database 'default'",
        "Worker w listens for new tasks again.",
    ]


def test_mysql_has_nothing_to_wake_a_worker_and_polls(db):
    if connection.vendor != "mysql":
        pytest.skip("PostgreSQL and SQLite have a way")
    assert listener.for_worker(task_backends["default"], (), "w") is None


@on_sqlite
@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_watcher_sees_each_commit_of_another_connection():
    watcher = listener.for_worker(task_backends["default"], ["mail"], "w")
    assert isinstance(watcher, listener.DataVersionWatcher)
    assert not watcher.means_work and watcher.period > 0
    try:
        assert watcher.drain()  # A first look: what came before went unseen.
        assert watcher.fileno() is None
        assert not watcher.drain()
        # Any queue: a change only makes the worker look what is due.
        tasks.record.enqueue("a")
        assert watcher.drain()
        assert not watcher.drain()
        with transaction.atomic():
            tasks.record.enqueue("b")
            assert not watcher.drain()  # Not committed yet.
        assert watcher.drain()
    finally:
        watcher.close()


def test_a_watcher_that_cannot_read_the_file_stays_quiet(tmp_path):
    """The worker then polls at its interval, as without a watcher."""
    watcher = listener.DataVersionWatcher(str(tmp_path / "missing" / "db.sqlite3"))
    assert not watcher.drain()
    assert not watcher.drain()
    watcher.close()


def test_an_in_memory_sqlite_database_has_no_watcher(db):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's")
    with mock.patch.object(connection, "is_in_memory_db", return_value=True):
        assert listener.for_worker(task_backends["default"], (), "w") is None


@on_sqlite
@pytest.mark.django_db(transaction=True)
def test_with_listen_off_sqlite_has_no_watcher(settings):
    settings.TASKS = {
        "default": settings.TASKS["default"] | {"OPTIONS": {"LISTEN": False}}
    }
    assert listener.for_worker(task_backends["default"], (), "w") is None


@pytest.mark.django_db
def test_next_due_is_the_earliest_ready_task_of_the_served_queues():
    now = timezone.now()
    backend = task_backends["default"]
    tasks.record.using(run_after=now + timedelta(seconds=30)).enqueue("late")
    tasks.record.using(run_after=now + timedelta(seconds=3), queue_name="mail").enqueue(
        "other queue"
    )
    soon = tasks.record.using(run_after=now + timedelta(seconds=10)).enqueue("soon")

    def due(queues, within):
        return listener.next_due(
            using="default",
            backend_name="default",
            queue_names=queues,
            before=now + timedelta(seconds=within),
        )

    assert due(["default"], 60) == soon.task.run_after
    assert due([], 60) == now + timedelta(seconds=3)
    assert due(["default"], 5) is None
    assert 9 < listener.until_due(backend, ["default"], 60) <= 10.01
    assert 4.5 < listener.until_due(backend, ["default"], 5) <= 5


@pytest.mark.django_db
def test_an_idle_worker_looks_every_interval_however_long_a_look_takes(
    monkeypatch,
):
    """The time a look takes (a reconnection, a slow server) comes off the
    sleep that follows, so looks are an interval apart, not more."""
    real = listener.next_due

    def slow(**kwargs):
        time.sleep(0.3)
        return real(**kwargs)

    monkeypatch.setattr(listener, "next_due", slow)
    assert 4.6 < listener.until_due(task_backends["default"], [], 5) <= 4.7


@on_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("queues", "indexes"),
    [
        ([], {"ddt_claim_idx", "ddt_claim_queue_idx"}),
        (["a", "b"], {"ddt_claim_queue_idx"}),
    ],
)
def test_next_due_is_an_index_only_scan_of_a_claim_index(queues, indexes):
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (id, task_path, queue_name, priority, "
            "backend_name, status, args, kwargs, due_at, enqueued_at, errors, "
            "worker_ids, worker_id, max_attempts, retry_backoff, retry_backoff_max) "
            "SELECT gen_random_uuid(), 'tests.tasks.add', 'a', 0, 'default', "
            "CASE WHEN n % 100 = 0 THEN 'READY' ELSE 'SUCCESSFUL' END, '[]', "
            "'{}', now(), now(), '[]', '[]', '', 1, 1, 3600 "
            "FROM generate_series(1, 20000) AS n"
        )
        # As autovacuum leaves it: the pages all-visible, the statistics fresh.
        cursor.execute(f"VACUUM ANALYZE {TABLE}")
        sql, params = dialect_for(connection).next_due_statement(
            backend_name="default", queue_names=queues, before=timezone.now()
        )
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        [[explained]] = cursor.fetchall()
    plan = json.loads(explained) if isinstance(explained, str) else explained
    scans = [
        node for node in _nodes(plan[0]["Plan"]) if node.get("Relation Name") == TABLE
    ]
    [scan] = scans
    assert scan["Node Type"] == "Index Only Scan"
    assert scan["Index Name"] in indexes


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
