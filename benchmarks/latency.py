"""Enqueue-to-start latency for an idle worker process, printed as JSON.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ddt_bench \\
        .venv/bin/python benchmarks/latency.py --tasks 1000

One worker process (``run_database_tasks --continuous``, at the default
interval of 5 s) waits while no-op tasks are enqueued one at a time, a jittered pause
apart; the latency of each is its ``started_at`` minus its ``enqueued_at``,
both taken on this machine's clock. On PostgreSQL the worker is woken by
NOTIFY, on SQLite by its watch on the file (``wake_up`` says which); on
MySQL/MariaDB it finds the task at its next poll. The database named in
DATABASE_URL (default: a SQLite file in /tmp) is migrated and its task table
emptied first: point it at a scratch database.
"""

import argparse
import json
import os
import random
import signal
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

from benchmarks.common import latency_summary  # noqa: E402
from benchmarks.tasks import noop  # noqa: E402
from django_database_task.engine import listener  # noqa: E402
from django_database_task.models import DatabaseTask, DatabaseTaskWorker  # noqa: E402


def start_worker(interval: float) -> subprocess.Popen:
    command = [sys.executable, "-m", "django", "run_database_tasks", "--continuous"]
    command += ["--interval", str(interval)]
    worker = subprocess.Popen(
        command,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not DatabaseTaskWorker.objects.exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise SystemExit("the worker did not start")
        time.sleep(0.05)
    time.sleep(1)  # Idle, waiting.
    return worker


def measure(count: int, pause: float, interval: float) -> list[float]:
    """Latencies in milliseconds."""
    DatabaseTask.objects.all().delete()
    DatabaseTaskWorker.objects.all().delete()
    jitter = random.Random(0)
    worker = start_worker(interval)
    try:
        for number in range(count):
            noop.enqueue(number)
            time.sleep(pause * jitter.uniform(0.5, 1.5))
        deadline = time.monotonic() + interval + 30
        while DatabaseTask.objects.filter(status="SUCCESSFUL").count() < count:
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not run every task")
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    times = DatabaseTask.objects.values_list("enqueued_at", "started_at")
    return [(started - enqueued).total_seconds() * 1000 for enqueued, started in times]


def wake_up(backend) -> str:
    """What ends an idle worker's wait besides its interval."""
    watch = listener.for_worker(backend, (), "benchmark")
    if watch is not None:
        watch.close()
    return {
        listener.Listener: "notify",
        listener.DataVersionWatcher: "watch",
    }.get(type(watch), "poll")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds, mean")
    parser.add_argument("--interval", type=float, default=5.0, help="the worker's")
    options = parser.parse_args()
    call_command("migrate", verbosity=0)
    latencies = measure(options.tasks, options.pause, options.interval)
    backend = task_backends["default"]
    print(
        json.dumps(
            {
                "database": connection.vendor,
                "wake_up": wake_up(backend),
                "tasks": options.tasks,
                "interval_s": options.interval,
                **latency_summary(latencies),
            }
        )
    )


if __name__ == "__main__":
    main()
