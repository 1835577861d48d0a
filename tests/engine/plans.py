"""Stale planner statistics on demand, and how many rows a statement reads.

Purge-then-burst is the normal life of a queue table: its statistics were
taken when it held many finished tasks, then those were purged and a backlog
arrived. ``stale_statistics`` reproduces that on PostgreSQL and MariaDB/MySQL
(automatic statistics off for the duration); ``rows_read`` runs a statement
under EXPLAIN ANALYZE, rolled back, and sums the rows each table access read,
rows thrown away by a filter included.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from django_database_task.sql import TABLE

WORKERS = "django_database_task_worker"
_COLUMNS = (
    "id, task_path, queue_name, priority, backend_name, status, args, kwargs, "
    "due_at, enqueued_at, finished_at, errors, worker_ids, worker_id, "
    "max_attempts, retry_backoff, retry_backoff_max"
)
# Per vendor: an INSERT ... SELECT of rows (status, status, count), ANALYZE,
# and switching automatic statistics off and back on.
_VENDORS = {
    "postgresql": {
        "insert": (
            f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT gen_random_uuid(), "
            "'tests.tasks.add', 'default', 0, 'default', %s, '[1, 2]', '{}', "
            "now() - interval '1 minute', now(), "
            "CASE WHEN %s = 'READY' THEN NULL ELSE now() END, '[]', '[]', '', "
            "1, 1, 3600 FROM generate_series(1, %s)"
        ),
        "analyze": f"ANALYZE {TABLE}",
        "manual": f"ALTER TABLE {TABLE} SET (autovacuum_enabled = false)",
        "automatic": f"ALTER TABLE {TABLE} RESET (autovacuum_enabled)",
    },
    "mysql": {
        # No generate_series; recursive CTEs stop at 1,000 levels by default.
        "insert": (
            f"INSERT INTO {TABLE} ({_COLUMNS}) WITH RECURSIVE digits (d) AS "
            "(SELECT 0 UNION ALL SELECT d + 1 FROM digits WHERE d < 9) "
            "SELECT UUID(), 'tests.tasks.add', 'default', 0, 'default', %s, "
            "'[1, 2]', '{}', NOW(6) - INTERVAL 1 MINUTE, NOW(6), "
            "IF(%s = 'READY', NULL, NOW(6)), '[]', '[]', '', 1, 1, 3600 "
            "FROM digits a, digits b, digits c, digits e, digits f "
            "WHERE a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d < %s"
        ),
        # PERSISTENT FOR ALL also takes the histograms MariaDB never
        # refreshes by itself.
        "analyze": f"ANALYZE TABLE {TABLE} PERSISTENT FOR ALL",
        "manual": f"ALTER TABLE {TABLE} STATS_AUTO_RECALC = 0",
        "automatic": f"ALTER TABLE {TABLE} STATS_AUTO_RECALC = DEFAULT",
    },
}
MAX_ROWS = 100_000


def execute(sql: str, params: list | None = None) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def insert(status: str, count: int) -> None:
    """``count`` tasks of the default backend and queue in ``status``."""
    if not 0 <= count <= MAX_ROWS:
        raise ValueError(f"count must be between 0 and {MAX_ROWS}, not {count}.")
    execute(_VENDORS[connection.vendor]["insert"], [status, status, count])


@contextmanager
def stale_statistics(*, finished: int, ready: int) -> Iterator[None]:
    """Statistics taken over ``finished`` SUCCESSFUL tasks (none: those of
    an empty table), which are then deleted, and ``ready`` READY tasks added
    that no statistics describe.
    Outside a transaction (MariaDB's ANALYZE TABLE commits); on the way out
    the tasks and workers are deleted and the empty table analysed."""
    if connection.vendor not in _VENDORS:
        raise NotImplementedError(f"No stale statistics on {connection.vendor}.")
    if connection.in_atomic_block:
        raise RuntimeError("stale_statistics() commits: use it outside a transaction.")
    vendor = _VENDORS[connection.vendor]
    # A new table: no deleted rows of earlier tests left for InnoDB to purge,
    # whose pages would change the optimizer's costs from run to run.
    execute(f"TRUNCATE TABLE {TABLE}")
    execute(vendor["manual"])
    try:
        insert("SUCCESSFUL", finished)
        execute(vendor["analyze"])
        execute(f"DELETE FROM {TABLE}")
        insert("READY", ready)
        yield
    finally:
        execute(f"DELETE FROM {TABLE}")
        execute(f"DELETE FROM {WORKERS}")
        execute(vendor["analyze"])
        execute(vendor["automatic"])


def captured(call: Callable[[], object]) -> list[str]:
    """The SELECT, UPDATE and DELETE statements ``call`` runs on the task or
    worker table, as sent; whatever it changed is rolled back."""
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        call()
        transaction.set_rollback(True)
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE"))
        and (TABLE in query["sql"])
    ]


def rows_read(sql: str) -> tuple[int, list[str]]:
    """Rows ``sql`` reads, over all its table accesses, from EXPLAIN ANALYZE
    (run in a transaction rolled back), and a line per access. A sequential
    scan of the task table counts as reading all of it: on PostgreSQL that
    includes the dead rows of a purge, which no row count shows."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            [[explained]] = cursor.fetchall()
            if isinstance(explained, str):
                explained = json.loads(explained)
            accesses = list(_pg_accesses(explained[0]["Plan"]))
        else:
            cursor.execute(f"ANALYZE FORMAT=JSON {sql}")
            [[explained]] = cursor.fetchall()
            accesses = list(_mysql_accesses(json.loads(explained)))
        transaction.set_rollback(True)
    return sum(rows for rows, _ in accesses), [line for _, line in accesses]


def _pg_accesses(node: dict) -> Iterator[tuple[int, str]]:
    # ModifyTable names the table too, but reads nothing itself.
    if "Relation Name" in node and "Scan" in node["Node Type"]:
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] == TABLE:
            # Dead rows are not counted: call it everything.
            rows = 10**9
        else:
            rows = (
                node["Actual Rows"]
                + node.get("Rows Removed by Filter", 0)
                + node.get("Rows Removed by Index Recheck", 0)
            ) * node["Actual Loops"]
        where = node.get("Index Name", "")
        yield rows, f"{node['Node Type']} {node['Relation Name']} {where}: {rows}"
    for child in node.get("Plans", []):
        yield from _pg_accesses(child)


def _mysql_accesses(node) -> Iterator[tuple[int, str]]:
    if isinstance(node, dict):
        if "table_name" in node:
            # r_rows: rows read per loop, before the attached condition.
            rows = round((node.get("r_rows") or 0) * (node.get("r_loops") or 1))
            yield (
                rows,
                f"{node['table_name']} {node.get('access_type')} "
                f"{node.get('key')}: {rows}",
            )
        for value in node.values():
            yield from _mysql_accesses(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mysql_accesses(value)
