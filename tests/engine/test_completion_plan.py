"""The PostgreSQL completion finds the finished tasks by primary key whatever
the statistics say, like the claim (see test_claim_plan)."""

import json

import pytest
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone

from django_database_task.sql import TABLE, PostgreSQL
from tests.engine.test_claim_plan import plan_nodes, stale_backlog

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's planner"
    ),
]


@pytest.mark.parametrize("status", ["SUCCESSFUL", "FAILED", "READY"])
def test_under_stale_statistics_a_batch_is_stored_by_primary_key(status):
    with connection.cursor() as cursor:
        stale_backlog(cursor)
        cursor.execute(
            f"UPDATE {TABLE} SET status = 'RUNNING', worker_id = 'w' WHERE id IN "
            f"(SELECT id FROM {TABLE} LIMIT 50) RETURNING id"
        )
        ids = [row[0] for row in cursor.fetchall()]
        now = timezone.now()
        values = {"finished_at": [now] * len(ids)}
        if status != "SUCCESSFUL":
            values["errors"] = [json.dumps([{"n": n}]) for n in range(len(ids))]
        if status == "READY":
            values["due_at"] = [now] * len(ids)
        sql, params = PostgreSQL().finish_statement(
            ids=ids, status=TaskResultStatus(status), worker_id="w", values=values
        )
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        [[explained]] = cursor.fetchall()
    if isinstance(explained, str):
        explained = json.loads(explained)
    update = explained[0]["Plan"]
    assert update["Node Type"] == "ModifyTable"
    table_scans = [
        node
        for node in plan_nodes(update["Plans"][0])
        if node.get("Relation Name") == TABLE
    ]
    assert {node.get("Index Name") for node in table_scans} == {f"{TABLE}_pkey"}, (
        json.dumps(update, indent=1)
    )
    assert sum(node["Actual Rows"] * node["Actual Loops"] for node in table_scans) == 50
    assert update["Plans"][0]["Actual Rows"] == 50
