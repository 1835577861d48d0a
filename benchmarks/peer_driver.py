"""The measuring half of ``benchmarks/peers.py``, run by each queue's own Python.

``peers.py`` copies this package (``common``, ``fill``, ``tasks`` and this
module) into a throwaway project holding the queue's settings, so that only
the installed queue is importable, and runs::

    python -m benchmarks.peer_driver '<config as JSON>'

The config names the queue's task model, worker commands, bulk enqueue
function (if any) and the options of its ours-only measures, and the
measures to take with their sizes. Prints one JSON object of figures; a
measure the queue cannot take is null. Every worker is a process of its own,
the same for every queue; its start-up and exit, timed on an empty queue
with the same options, are subtracted from the rates.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import django

django.setup()

from django.apps import apps  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from benchmarks import fill  # noqa: E402
from benchmarks.common import latency_summary, timed_run  # noqa: E402
from benchmarks.tasks import async_io_wait, io_wait, noop  # noqa: E402

DONE = "SUCCESSFUL"


class Bench:
    """One queue on one database: each measure empties the table first."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.sizes = config["sizes"]
        self.model = apps.get_model(config["model"])
        self.bulk = import_string(config["bulk"]) if config["bulk"] else None
        self.startups: dict[tuple[str, ...], float] = {}
        self.figures: dict[str, Any] = {}

    # Helpers.

    def clear(self) -> None:
        table = connection.ops.quote_name(self.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}")

    def worker_command(self, options: Sequence[str] = ()) -> list[str]:
        return [sys.executable, "-m", "django", *self.config["worker"], *options]

    def run_worker(self, options: Sequence[str] = ()) -> tuple[float, str]:
        """Seconds the worker took, and what it wrote."""
        return timed_run(self.worker_command(options), os.getcwd(), os.environ)

    def empty_queue(self, options: Sequence[str] = ()) -> None:
        """Empty the table, having timed the worker's start and exit with
        nothing to do (once per options, the best of two)."""
        key = tuple(options)
        self.clear()
        if key not in self.startups:
            self.startups[key] = min(self.run_worker(options)[0] for _ in range(2))

    def drain_rate(
        self, count: int, options: Sequence[str] = (), done: int = 0
    ) -> float:
        """Tasks per second of one worker command emptying the queue of its
        ``count`` tasks, start-up excluded (``done`` rows were finished before)."""
        startup = self.startups[tuple(options)]  # Timed by empty_queue().
        elapsed, output = self.run_worker(options)
        finished = self.model.objects.filter(status=DONE).count() - done
        if finished != count:
            statuses = dict(
                self.model.objects.values_list("status").annotate(Count("pk"))
            )
            raise RuntimeError(
                f"The worker finished {finished} of {count} tasks and exited "
                f"(statuses: {statuses}); it wrote:\n{output[-3000:]}"
            )
        if elapsed < 1.5 * startup:
            self.figures.setdefault("warnings", []).append(
                f"{count} tasks took {elapsed:.2f} s against a start-up of "
                f"{startup:.2f} s: too few to measure well."
            )
        return count / max(elapsed - startup, 1e-3)

    def enqueue(self, task: Any, count: int) -> float:
        """Tasks per second of enqueue(), one call each; bulk if the queue
        has it."""
        calls = [((number,), {}) for number in range(count)]
        started = time.perf_counter()
        if self.bulk is not None:
            self.bulk(task, calls)
        else:
            for args, kwargs in calls:
                task.enqueue(*args, **kwargs)
        return count / (time.perf_counter() - started)

    # Measures.

    def measure_enqueue_and_process(self, measures: set[str]) -> None:
        """enqueue() one by one; then one worker draining the backlog, those
        tasks if it is as large and the queue has no bulk enqueue."""
        count, backlog = self.sizes["enqueue_tasks"], self.sizes["tasks"]
        if "process" in measures:
            self.empty_queue()
            self.figures["worker_startup_s"] = round(self.startups[()], 3)
        else:
            self.clear()
        started = time.perf_counter()
        for number in range(count):
            noop.enqueue(number)
        self.figures["enqueue_per_s"] = round(count / (time.perf_counter() - started))
        if "process" in measures:
            if backlog != count or self.bulk is not None:
                self.clear()
                self.enqueue(noop, backlog)
            self.figures["process_per_s"] = round(self.drain_rate(backlog))

    def measure_bulk(self) -> None:
        if self.bulk is None:
            self.figures["bulk_enqueue_per_s"] = None
            return
        self.clear()
        count = self.sizes["bulk_tasks"]
        self.figures["bulk_enqueue_per_s"] = round(self.enqueue(noop, count))

    def measure_options(self, name: str, key: str, task: Any, count: int) -> None:
        """The rate of a worker with this queue's options for ``key`` (null
        when it has none)."""
        options = self.config["options"].get(key)
        if options is None:
            self.figures[name] = None
            return
        self.empty_queue(options)
        self.enqueue(task, count)
        self.figures[name] = round(self.drain_rate(count, options))
        startup = self.startups[tuple(options)]
        self.figures[name.replace("_per_s", "_startup_s")] = round(startup, 3)

    def measure_latency(self) -> None:
        """An idle continuous worker at its defaults: each task's start minus
        its enqueue, both as the queue recorded them."""
        count, pause = self.sizes["latency_tasks"], self.sizes["latency_pause"]
        self.clear()
        warm = noop.enqueue(-1)
        command = [sys.executable, "-m", "django", *self.config["continuous"]]
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            self.wait_done(1, worker)
            time.sleep(1)  # Idle, waiting.
            jitter = random.Random(0)
            for number in range(count):
                noop.enqueue(number)
                time.sleep(pause * jitter.uniform(0.5, 1.5))
            self.wait_done(count + 1, worker)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        times = self.model.objects.exclude(pk=warm.id).values_list(
            "enqueued_at", "started_at"
        )
        summary = latency_summary(
            [(started - enqueued).total_seconds() * 1000 for enqueued, started in times]
        )
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            self.figures[f"latency_{name}"] = summary[name]

    def wait_done(self, count: int, worker: subprocess.Popen) -> None:
        deadline = time.monotonic() + 120
        while self.model.objects.filter(status=DONE).count() < count:
            if worker.poll() is not None:
                raise RuntimeError(
                    f"The worker exited with status {worker.returncode}."
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"The worker did not finish {count} tasks in 120 s.")
            time.sleep(0.05)

    def measure_history(self) -> None:
        """The no-op rate with this many finished rows in the table, and its
        ratio to the rate with none."""
        rows, count = self.sizes["history_rows"], self.sizes["tasks"]
        empty = self.figures.get("process_per_s")
        if empty is None:
            self.empty_queue()
            self.enqueue(noop, count)
            empty = self.drain_rate(count)
            self.figures["history_empty_per_s"] = round(empty)
        self.empty_queue()
        noop.enqueue(0)
        self.run_worker()
        template = self.model.objects.get(status=DONE)
        started = time.perf_counter()
        fill.copy_row(self.model, template.pk, rows - 1)
        fill.refresh_statistics(self.model)
        self.check_copies(template.pk, rows)
        self.figures["history_fill_s"] = round(time.perf_counter() - started, 1)
        self.enqueue(noop, count)
        rate = self.drain_rate(count, done=rows)
        self.figures["history_per_s"] = round(rate)
        self.figures["history_ratio"] = round(rate / empty, 2)

    def check_copies(self, template: Any, rows: int) -> None:
        """The copies are finished tasks as the queue itself reads them."""
        total = self.model.objects.filter(status=DONE).count()
        copy = self.model.objects.exclude(pk=template).first()
        if total != rows or copy is None:
            raise RuntimeError(f"{total} finished rows after the fill, not {rows}.")
        result = noop.get_result(str(copy.pk))
        if result.status != DONE or result.finished_at is None:
            raise RuntimeError(f"A copy reads as {result.status}, not {DONE}.")

    def run(self, measures: set[str]) -> dict[str, Any]:
        if measures & {"enqueue", "process"}:
            self.measure_enqueue_and_process(measures)
        if "bulk" in measures:
            self.measure_bulk()
        sizes = self.sizes
        steps = [
            ("processes", "processes_per_s", "processes", noop, sizes["tasks"]),
            ("io", "io_per_s", "io", io_wait, sizes["io_tasks"]),
            ("async", "async_io_per_s", "async_io", async_io_wait, sizes["io_tasks"]),
        ]
        for measure, name, key, task, count in steps:
            if measure in measures:
                self.measure_options(name, key, task, count)
        if "latency" in measures:
            self.measure_latency()
        if "history" in measures:
            # Last: nothing measured after it pays for deleting its rows.
            # Its rate is compared with ``process``'s, taken in this run if
            # asked for, else just before it.
            self.measure_history()
        return self.figures


def main() -> None:
    config = json.loads(sys.argv[1])
    call_command("migrate", verbosity=0)
    print(json.dumps(Bench(config).run(set(config["measures"]))))


if __name__ == "__main__":
    main()
