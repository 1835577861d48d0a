"""Draining a backlog under stale planner statistics, printed as JSON.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ddt_bench \\
        .venv/bin/python benchmarks/stale_statistics.py
    DATABASE_URL=mysql://root@127.0.0.1:3306/ddt_bench \\
        .venv/bin/python benchmarks/stale_statistics.py

Purge-then-burst: the table holds ``--finished`` finished tasks when its
statistics are taken (0: an empty table's), then they are purged and
``--backlog`` READY tasks arrive. ``--by-id`` of them are run one by one with
``run_task_by_id`` (as the ``execute/`` endpoint does for Cloud Tasks), then
one in-process worker drains the rest. Twice:

- ``stale``: nothing analyses the table after the purge (automatic
  statistics are switched off for the run: autovacuum on PostgreSQL,
  ``STATS_AUTO_RECALC`` on MariaDB/MySQL, whose ``ANALYZE TABLE ...
  PERSISTENT FOR ALL`` statistics are never refreshed automatically anyway);
- ``fresh``: the same, then the table is analysed with the backlog in it.

``--rounds`` repeats both, alternating which goes first; the ratios are of
the median rates, stale over fresh. ``claim_plan`` names how the claim's
statements read the table in each run, before the drain. The database named
in DATABASE_URL is migrated and its task table emptied: point it at a
scratch database.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.tasks import task_backends  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from django_database_task.api import run_task_by_id  # noqa: E402
from django_database_task.engine.claim import claim_tasks  # noqa: E402
from django_database_task.engine.worker import Worker  # noqa: E402
from django_database_task.sql import TABLE  # noqa: E402

COLUMN_LIST = (
    "id, task_path, queue_name, priority, backend_name, status, args, kwargs, "
    "due_at, enqueued_at, finished_at, errors, worker_ids, worker_id, "
    "max_attempts, retry_backoff, retry_backoff_max"
)
# Per vendor: the INSERT ... SELECT writing rows (status and count as
# parameters), how to stop and restore automatic statistics, and ANALYZE.
VENDORS = {
    "postgresql": {
        "insert": (
            f"INSERT INTO {TABLE} ({COLUMN_LIST}) SELECT gen_random_uuid(), "
            "'benchmarks.tasks.noop', 'default', 0, 'default', %s, "
            "jsonb_build_array(n), '{}', now() - interval '1 minute', now(), "
            "CASE WHEN %s = 'READY' THEN NULL ELSE now() END, '[]', '[]', '', "
            "1, 1, 3600 FROM generate_series(1, %s) AS n"
        ),
        "manual": f"ALTER TABLE {TABLE} SET (autovacuum_enabled = false)",
        "automatic": f"ALTER TABLE {TABLE} RESET (autovacuum_enabled)",
        "analyze": f"ANALYZE {TABLE}",
    },
    "mysql": {
        "insert": (
            f"INSERT INTO {TABLE} ({COLUMN_LIST}) WITH RECURSIVE "
            "digits (d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM digits "
            "WHERE d < 9), numbers (n) AS (SELECT a.d + 10 * b.d + 100 * c.d "
            "+ 1000 * e.d + 10000 * f.d + 100000 * g.d + 1 FROM digits a, "
            "digits b, digits c, digits e, digits f, digits g) SELECT UUID(), "
            "'benchmarks.tasks.noop', 'default', 0, 'default', %s, "
            "JSON_ARRAY(n), '{}', NOW(6) - INTERVAL 1 MINUTE, NOW(6), "
            "IF(%s = 'READY', NULL, NOW(6)), '[]', '[]', '', 1, 1, 3600 "
            "FROM numbers WHERE n <= %s"
        ),
        "manual": f"ALTER TABLE {TABLE} STATS_AUTO_RECALC = 0",
        "automatic": f"ALTER TABLE {TABLE} STATS_AUTO_RECALC = DEFAULT",
        "analyze": f"ANALYZE TABLE {TABLE} PERSISTENT FOR ALL",
    },
}
MAX_ROWS = 1_000_000


def execute(sql: str, params: list | None = None) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def insert(status: str, count: int, vendor: dict) -> None:
    # Batches keep one statement's undo log and WAL modest.
    for start in range(0, count, MAX_ROWS):
        execute(vendor["insert"], [status, status, min(MAX_ROWS, count - start)])


def claim_plan() -> list[str]:
    """How the claim's statements read the task table, from EXPLAIN: each
    statement the claim runs is captured (in a transaction rolled back) and
    explained."""
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        claim_tasks(using="default", backend_name="default", worker_id="plan")
        transaction.set_rollback(True)
    found: set[str] = set()
    for query in captured:
        sql = query["sql"]
        if TABLE not in sql or not sql.lstrip().upper().startswith(
            ("SELECT", "UPDATE")
        ):
            continue
        if connection.vendor == "postgresql":
            [[explained]] = execute(f"EXPLAIN (FORMAT JSON) {sql}")
            if isinstance(explained, str):
                explained = json.loads(explained)
            found |= _pg_accesses(explained[0]["Plan"])
        else:
            [[explained]] = execute(f"EXPLAIN FORMAT=JSON {sql}")
            found |= _mysql_accesses(json.loads(explained))
    return sorted(found)


def _pg_accesses(node: dict) -> set[str]:
    found = set()
    if "Scan" in node["Node Type"]:
        found.add(
            f"{node['Node Type']} {node.get('Index Name', node.get('Relation Name'))}"
        )
    for child in node.get("Plans", []):
        found |= _pg_accesses(child)
    return found


def _mysql_accesses(node) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if "table_name" in node:
            found.add(f"{node.get('access_type')} {node.get('key')}")
        for value in node.values():
            found |= _mysql_accesses(value)
    elif isinstance(node, list):
        for value in node:
            found |= _mysql_accesses(value)
    return found


def measure(*, finished: int, backlog: int, by_id: int, fresh: bool) -> dict:
    """Fill, analyse, purge, add the backlog (and analyse it when ``fresh``);
    run ``by_id`` tasks of it with ``run_task_by_id``, then drain the rest
    with one worker."""
    vendor = VENDORS[connection.vendor]
    # A new table each time: no deleted rows of the last run still purged.
    execute(f"TRUNCATE TABLE {TABLE}")
    execute(vendor["manual"])
    try:
        insert("SUCCESSFUL", finished, vendor)
        execute(vendor["analyze"])
        execute(f"DELETE FROM {TABLE}")
        insert("READY", backlog, vendor)
        if fresh:
            execute(vendor["analyze"])
        plan = claim_plan()
        ids = [
            str(row[0])
            for row in execute(f"SELECT id FROM {TABLE} ORDER BY id LIMIT %s", [by_id])
        ]
        started = time.perf_counter()
        for task_id in ids:
            assert run_task_by_id(task_id, backend_name="default") is not None
        by_id_elapsed = time.perf_counter() - started
        left = backlog - len(ids)
        worker = Worker(task_backends["default"], max_tasks=left)
        started = time.perf_counter()
        processed = worker.run()
        elapsed = time.perf_counter() - started
    finally:
        execute(vendor["automatic"])
    assert processed == left, processed
    return {
        "worker_per_s": round(left / elapsed),
        "by_id_per_s": round(len(ids) / by_id_elapsed) if ids else None,
        "claim_plan": plan,
    }


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def median_ratio(runs: dict, key: str) -> float | None:
    stale = [run[key] for run in runs["stale"] if run[key]]
    fresh = [run[key] for run in runs["fresh"] if run[key]]
    if not stale or not fresh:
        return None
    return round(statistics.median(stale) / statistics.median(fresh), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--finished",
        type=int,
        default=1_000_000,
        help="finished tasks the statistics are taken over; 0: those of an empty table",
    )
    parser.add_argument("--backlog", type=positive, default=30_000)
    parser.add_argument(
        "--by-id",
        type=int,
        default=1000,
        help="tasks of the backlog run one by one with run_task_by_id (as "
        "Cloud Tasks does) before the worker drains the rest; 0 for none",
    )
    parser.add_argument(
        "--rounds",
        type=positive,
        default=1,
        help="stale and fresh runs each, alternating which goes first",
    )
    options = parser.parse_args()
    if connection.vendor not in VENDORS:
        parser.error("DATABASE_URL must name a PostgreSQL or MariaDB/MySQL database.")
    if options.finished < 0:
        parser.error("--finished must be 0 or more.")
    if not 0 <= options.by_id < options.backlog:
        parser.error("--by-id must be at least 0 and less than --backlog.")
    call_command("migrate", verbosity=0)
    sizes = {
        "finished": options.finished,
        "backlog": options.backlog,
        "by_id": options.by_id,
    }
    runs: dict[str, list] = {"stale": [], "fresh": []}
    for round_number in range(options.rounds):
        order = ["stale", "fresh"] if round_number % 2 == 0 else ["fresh", "stale"]
        for name in order:
            runs[name].append(measure(**sizes, fresh=name == "fresh"))
    execute(f"DELETE FROM {TABLE}")
    print(
        json.dumps(
            {
                "database": connection.vendor,
                **sizes,
                **runs,
                "worker_ratio": median_ratio(runs, "worker_per_s"),
                "by_id_ratio": median_ratio(runs, "by_id_per_s"),
            }
        )
    )


if __name__ == "__main__":
    main()
