"""Waking idle workers: what an enqueue NOTIFYs on PostgreSQL, what a
worker's listener makes of it, and when the next delayed task is due."""

import json
import logging
import time
from datetime import timedelta

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


def test_other_databases_have_no_listener(db):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL has one")
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
    assert listener.until_due(backend, ["default"], 5) == 5


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
