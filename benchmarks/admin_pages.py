"""Admin pages over 1,000,000 tasks on PostgreSQL.

Creates (or reuses) the database ``ddt_admin_bench``, seeds it with one
INSERT ... SELECT generate_series, then times the task list (default,
filtered by status, searched, sorted by duration, page 50) and the
dashboard through Django's test Client: median of several loads. Prints
JSON with the timings, the queries each page ran, and the EXPLAIN ANALYZE
of the list query.

    python benchmarks/admin_pages.py [--rows 1000000] [--loads 7]
        [--url postgres://postgres@127.0.0.1:5432/ddt_admin_bench] [--reseed]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = """
INSERT INTO django_database_task (
    id, task_path, queue_name, priority, backend_name, status, args, kwargs,
    run_after, due_at, enqueued_at, started_at, last_attempted_at,
    finished_at, return_value, errors, worker_ids)
SELECT
    md5(g::text)::uuid,
    (ARRAY['shop.tasks.send_receipt', 'shop.tasks.sync_inventory',
           'mail.tasks.newsletter', 'reports.tasks.monthly'])[1 + g % 4],
    (ARRAY['default', 'emails', 'reports'])[1 + g % 3],
    (g % 3) * 5 - 5,
    'default',
    st.status,
    jsonb_build_array(g),
    '{}'::jsonb,
    NULL,
    t.enq,
    t.enq,
    CASE WHEN st.status <> 'READY' THEN t.enq + interval '1 second' END,
    CASE WHEN st.status <> 'READY' THEN t.enq + interval '1 second' END,
    CASE WHEN st.status IN ('SUCCESSFUL', 'FAILED')
         THEN t.enq + interval '1 second' + (g % 5000) * interval '1 millisecond' END,
    CASE WHEN st.status = 'SUCCESSFUL' THEN to_jsonb(g) END,
    CASE WHEN st.status = 'FAILED' THEN jsonb_build_array(jsonb_build_object(
        'exception_class_path', 'builtins.ValueError',
        'traceback', 'ValueError: boom')) ELSE '[]'::jsonb END,
    CASE WHEN st.status <> 'READY' THEN '["bench:1:abcdef"]'::jsonb
         ELSE '[]'::jsonb END
FROM generate_series(1, :rows) AS g
CROSS JOIN LATERAL (
    SELECT now() - (:rows - g) * interval '1 second' * (172800.0 / :rows) AS enq
) AS t
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN g > :rows - 2000 THEN 'READY'
        WHEN g > :rows - 2010 THEN 'RUNNING'
        WHEN g % 50 = 0 THEN 'FAILED'
        ELSE 'SUCCESSFUL' END AS status
) AS st
"""


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def median_ms(load, loads: int) -> tuple[float, list[float]]:
    load()  # warm-up: connections, templates, caches
    times = []
    for _ in range(loads):
        start = time.perf_counter()
        load()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1), [round(t, 1) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument(
        "--url", default="postgres://postgres@127.0.0.1:5432/ddt_admin_bench"
    )
    parser.add_argument("--reseed", action="store_true")
    options = parser.parse_args()
    if not options.url.startswith(("postgres://", "postgresql://")):
        parser.error("--url must be a PostgreSQL URL (postgres://...)")

    ensure_database(options.url)
    os.environ["DATABASE_URL"] = options.url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    from django_database_task.models import DatabaseTask

    setup_test_environment()
    # One persistent connection, as with CONN_MAX_AGE, and a query log that
    # survives each request so that the queries of a page can be counted.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections, reset_queries

    request_started.disconnect(reset_queries)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    call_command("migrate", verbosity=0)
    seeded = DatabaseTask.objects.count()
    seed_seconds = None
    if options.reseed or seeded != options.rows:
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE django_database_task")
            cursor.execute(SEED.replace(":rows", str(int(options.rows))))
            cursor.execute("ANALYZE django_database_task")
        seed_seconds = round(time.perf_counter() - start, 1)

    user, _ = User.objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    changelist = reverse("admin:django_database_task_databasetask_changelist")
    pages = {
        "list": changelist,
        "list_failed": f"{changelist}?status__exact=FAILED",
        "list_search_path": f"{changelist}?q=newsletter",
        "list_sorted_by_duration": f"{changelist}?o=-8",
        "list_page_50": f"{changelist}?p=50",
        "dashboard": reverse("admin:django_database_task_databasetask_dashboard"),
    }
    results = {}
    for name, url in pages.items():

        def load(url=url):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        with CaptureQueriesContext(connection) as queries:
            load()
        median, runs = median_ms(load, options.loads)
        results[name] = {
            "url": url,
            "median_ms": median,
            "runs_ms": runs,
            "queries": len(queries),
            "slowest_query_ms": max(float(q["time"]) * 1000 for q in queries),
        }

    # The list page's row query, as the admin builds it.
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get(changelist)
    request.user = user
    model_admin = admin.site._registry[DatabaseTask]
    changelist_object = model_admin.get_changelist_instance(request)
    page = changelist_object.result_list
    sql, params = page.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        plan = [row[0] for row in cursor.fetchall()]

    print(
        json.dumps(
            {
                "database": connection.vendor,
                "server_version": connection.pg_version,
                "rows": DatabaseTask.objects.count(),
                "seed_seconds": seed_seconds,
                "loads_per_page": options.loads,
                "pages": results,
                "estimated_count_shown": changelist_object.result_count,
                "list_query": sql % tuple(repr(p) for p in params),
                "list_query_plan": plan,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
