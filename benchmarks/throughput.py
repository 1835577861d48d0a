"""Enqueue and processing throughput of no-op tasks, printed as JSON.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ddt_bench \\
        .venv/bin/python benchmarks/throughput.py --tasks 2000

``enqueue_per_s`` is ``enqueue()`` called once per task; ``bulk_enqueue_per_s``
is ``bulk_enqueue()`` given ``--bulk-size`` calls at a time, ``--bulk-tasks``
in all (each call one int argument, as ``enqueue_per_s``'s).

The database named in DATABASE_URL (default: a SQLite file in /tmp) is
migrated and its task table emptied first: point it at a scratch database.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/ddt_bench.sqlite3")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.tasks import task_backends  # noqa: E402

from benchmarks.tasks import noop  # noqa: E402
from django_database_task import bulk_enqueue  # noqa: E402
from django_database_task.engine.worker import Worker  # noqa: E402
from django_database_task.models import DatabaseTask  # noqa: E402


def enqueue(count: int) -> float:
    DatabaseTask.objects.all().delete()
    started = time.perf_counter()
    for number in range(count):
        noop.enqueue(number)
    return count / (time.perf_counter() - started)


def bulk(count: int, size: int) -> float:
    """Tasks per second through ``bulk_enqueue``, ``size`` calls at a time;
    each list of calls is built before its clock starts."""
    DatabaseTask.objects.all().delete()
    elapsed = 0.0
    for start in range(0, count, size):
        calls = [((number,), {}) for number in range(start, min(start + size, count))]
        started = time.perf_counter()
        bulk_enqueue(noop, calls)
        elapsed += time.perf_counter() - started
    assert DatabaseTask.objects.count() == count
    return count / elapsed


def one_worker(count: int) -> float:
    worker = Worker(task_backends["default"], max_tasks=count)
    started = time.perf_counter()
    processed = worker.run()
    elapsed = time.perf_counter() - started
    assert processed == count, processed
    return count / elapsed


def worker_processes(count: int, processes: int) -> float:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "django", "run_database_tasks", "-v", "0"]
    started = time.perf_counter()
    workers = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        _, err = worker.communicate()
        assert worker.returncode == 0, err.decode()
    elapsed = time.perf_counter() - started
    done = DatabaseTask.objects.filter(status="SUCCESSFUL").count()
    assert done == count, done
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--bulk-tasks", type=int, default=100_000)
    parser.add_argument("--bulk-size", type=int, default=20_000)
    options = parser.parse_args()
    call_command("migrate", verbosity=0)
    results = {
        "database": connection.vendor,
        "tasks": options.tasks,
        "enqueue_per_s": round(enqueue(options.tasks)),
        "one_worker_per_s": round(one_worker(options.tasks)),
        "bulk_enqueue_per_s": round(bulk(options.bulk_tasks, options.bulk_size)),
    }
    enqueue(options.tasks)
    results[f"{options.processes}_processes_per_s"] = round(
        worker_processes(options.tasks, options.processes)
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
