"""Concurrency and memory of one worker process, printed as JSON.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ddt_bench \\
        .venv/bin/python benchmarks/concurrency.py --tasks 2000 --memory-tasks 100000

- ``io_per_s``: tasks that sleep 50 ms (waiting on the network, say), run by
  ``run_database_tasks --concurrency 32`` in a process of its own;
- ``async_io_per_s``: the same as async tasks, ``--concurrency 100``;
- ``memory_growth_mb``: resident memory of a worker after its first
  ``--memory-tasks / 10`` no-op tasks and after all of them.

The database named in DATABASE_URL is migrated and its task table emptied
first: point it at a scratch database.
"""

import argparse
import json
import os
import sys
import time
import uuid
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
from django.utils import timezone  # noqa: E402

from benchmarks.common import timed_run  # noqa: E402
from django_database_task.engine.worker import Worker  # noqa: E402
from django_database_task.models import DatabaseTask  # noqa: E402


def fill(task_path: str, count: int) -> None:
    """Write ``count`` READY tasks at once: the setup is not what is measured."""
    DatabaseTask.objects.all().delete()
    now = timezone.now()
    rows = [
        DatabaseTask(
            id=uuid.uuid4(),
            task_path=task_path,
            queue_name="default",
            backend_name="default",
            args=[number],
            due_at=now,
            enqueued_at=now,
        )
        for number in range(count)
    ]
    DatabaseTask.objects.bulk_create(rows, batch_size=1000)


def worker_process(count: int, task_path: str, concurrency: int) -> float:
    fill(task_path, count)
    command = [
        sys.executable, "-m", "django", "run_database_tasks", "-v", "0",
        "--concurrency", str(concurrency),
    ]  # fmt: skip
    elapsed, _ = timed_run(command, ROOT, os.environ | {"PYTHONPATH": str(ROOT)})
    finished = DatabaseTask.objects.filter(status="SUCCESSFUL").count()
    assert finished == count, finished
    return count / elapsed


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_growth(count: int) -> dict:
    """One in-process worker: its memory after a tenth of the tasks (warmed
    up) and after all of them."""
    fill("benchmarks.tasks.noop", count)
    backend = task_backends["default"]
    Worker(backend, max_tasks=count // 10).run()
    warm = resident_mb()
    started = time.perf_counter()
    Worker(backend, max_tasks=count - count // 10).run()
    elapsed = time.perf_counter() - started
    return {
        "memory_tasks": count,
        "memory_warm_mb": round(warm, 1),
        "memory_growth_mb": round(resident_mb() - warm, 1),
        "memory_run_per_s": round((count - count // 10) / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--memory-tasks", type=int, default=100_000)
    options = parser.parse_args()
    call_command("migrate", verbosity=0)
    results = {
        "database": connection.vendor,
        "tasks": options.tasks,
        "io_per_s": round(
            worker_process(options.tasks, "benchmarks.tasks.io_wait", 32)
        ),
        "async_io_per_s": round(
            worker_process(options.tasks, "benchmarks.tasks.async_io_wait", 100)
        ),
    }
    if options.memory_tasks:
        results |= memory_growth(options.memory_tasks)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
