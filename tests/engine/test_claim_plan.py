"""The claim keeps its plan whatever the statistics say.

Purge-then-burst is the normal life of a queue table: statistics taken when
it held a million finished tasks say there are no READY rows, while a fresh
backlog holds thousands. The claim must still find its rows by primary key,
not scan every READY row once per claim.
"""

import json

import pytest
from django.db import connection
from django.utils import timezone

from django_database_task.engine.claim import COLUMNS, claim_tasks
from django_database_task.sql import TABLE, PostgreSQL
from tests.engine.plans import captured, rows_read, stale_statistics

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's planner"
)
mysql_only = pytest.mark.skipif(
    connection.vendor != "mysql", reason="MariaDB/MySQL's optimizer"
)

ROWS = (
    "INSERT INTO {table} (id, task_path, queue_name, priority, backend_name, "
    "status, args, kwargs, due_at, enqueued_at, finished_at, errors, worker_ids, "
    "worker_id, max_attempts, retry_backoff, retry_backoff_max) "
    "SELECT gen_random_uuid(), 'tests.tasks.add', 'default', 0, 'default', "
    "%s, '[1, 2]', '{{}}', now() - interval '1 minute', now(), {finished}, '[]', "
    "'[]', '', 1, 1, 3600 FROM generate_series(1, %s)"
)


def stale_backlog(cursor) -> None:
    """Statistics taken over 100,000 finished tasks, which are then deleted,
    and a backlog of 10,000 READY tasks that no statistics describe; all in
    the test's transaction, which PostgreSQL's ANALYZE does not commit."""
    cursor.execute(f"ALTER TABLE {TABLE} SET (autovacuum_enabled = false)")
    cursor.execute(ROWS.format(table=TABLE, finished="now()"), ["SUCCESSFUL", 100_000])
    cursor.execute(f"ANALYZE {TABLE}")
    cursor.execute(f"DELETE FROM {TABLE}")
    cursor.execute(ROWS.format(table=TABLE, finished="NULL"), ["READY", 10_000])


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.django_db
@postgresql_only
def test_under_stale_statistics_the_claim_updates_by_primary_key():
    with connection.cursor() as cursor:
        stale_backlog(cursor)
        sql, params = PostgreSQL().claim_statement(
            columns=COLUMNS,
            backend_name="default",
            now=timezone.now(),
            worker_id="w",
            queue_names=["default"],
            limit=10,
        )
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        [[explained]] = cursor.fetchall()
    if isinstance(explained, str):
        explained = json.loads(explained)
    plan = explained[0]
    update = plan["Plan"]
    assert update["Node Type"] == "ModifyTable"
    [outer_scan] = [
        node
        for node in update["Plans"]
        if node.get("Parent Relationship") != "InitPlan"
    ]
    # The rows to update are found by id, and only the claimed ones are read.
    indexes = {
        node["Index Name"] for node in plan_nodes(outer_scan) if "Index Name" in node
    }
    assert indexes == {f"{TABLE}_pkey"}, json.dumps(update, indent=1)
    assert outer_scan["Actual Rows"] == 10
    scanned = [
        node["Actual Rows"] * node.get("Actual Loops", 1)
        for node in plan_nodes(update)
        if "Scan" in node["Node Type"]
    ]
    assert max(scanned) <= 10


@pytest.mark.django_db(transaction=True)
@mysql_only
@pytest.mark.parametrize("finished", [20_000, 0], ids=["purged", "empty"])
def test_under_stale_statistics_the_mysql_claim_reads_only_what_it_claims(finished):
    """Statistics of a purged table (20,000 finished rows then deleted) or of
    an empty one (a new table, or InnoDB sampling pages of deleted rows just
    after a purge); then a backlog. With the empty table's, the UPDATE and
    the read-back used to read every row to find the ten claimed ids."""
    with stale_statistics(finished=finished, ready=2_000):
        statements = captured(
            lambda: claim_tasks(
                using="default", backend_name="default", worker_id="w", limit=10
            )
        )
        # The locked SELECT of the ids, their UPDATE and reading them back.
        assert len(statements) == 3, statements
        reads = [rows_read(sql) for sql in statements]
    for sql, (rows, accesses) in zip(statements, reads, strict=True):
        assert rows <= 10, f"{rows} rows read by\n{sql}\n" + "\n".join(accesses)
    [(_, select), (_, update), (_, read_back)] = reads
    assert any(" ddt_claim_idx:" in access for access in select), select
    assert all(" PRIMARY:" in access for access in update + read_back)
