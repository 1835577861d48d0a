"""Queries for RUNNING tasks go through the status-led claim index on
MySQL/MariaDB, whatever its statistics say, and find what they would
without the hint; elsewhere they are left as they are."""

import pytest
from django.db import connection
from django.db.models import Exists, OuterRef
from django.tasks import task_backends

from django_database_task.engine import registry
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from django_database_task.sql import among_running
from tests.factories import make_task

pytestmark = pytest.mark.django_db

HINT = "FORCE INDEX (`ddt_claim_idx`)"


@pytest.fixture
def tasks():
    return {
        "running": make_task(status="RUNNING", worker_id="w1"),
        "other": make_task(status="RUNNING", worker_id="w2"),
        "ready": make_task(),
    }


def held_by_w1():
    return DatabaseTask.objects.filter(status="RUNNING", worker_id="w1")


def test_the_rows_are_those_of_the_plain_query(tasks):
    hinted = among_running(held_by_w1())
    assert [row.pk for row in hinted] == [tasks["running"].pk]


def test_querysets_chained_from_it_keep_the_hint_and_their_meaning(tasks):
    registry.register(task_backends["default"], "w2")
    registered = DatabaseTaskWorker.objects.filter(pk=OuterRef("worker_id"))
    hinted = among_running(DatabaseTask.objects.filter(status="RUNNING"))
    chained = hinted.exclude(Exists(registered)).order_by("pk").only("pk")[:10]
    assert [row.pk for row in chained] == [tasks["running"].pk]
    assert list(hinted.filter(worker_id="w2").values_list("pk", flat=True)) == [
        tasks["other"].pk
    ]
    sql = str(chained.query)
    if connection.vendor == "mysql":
        # Once: on the outer table, not on the subquery's.
        assert sql.count(HINT) == 1
        assert f"FROM `django_database_task` {HINT} WHERE" in sql
    else:
        assert "FORCE INDEX" not in sql


def test_the_plain_queryset_is_not_changed():
    plain = held_by_w1()
    among_running(plain)
    assert "FORCE INDEX" not in str(plain.query)
