"""This checkout against other database queues for django.tasks, side by side.

    .venv/bin/python benchmarks/peers.py --output /tmp/peers.json \\
        --chart docs/images/benchmarks.png --markdown

Runs, for each database (SQLite, PostgreSQL 127.0.0.1:5432 as postgres,
MariaDB 127.0.0.1:3306 as root) and each queue (this checkout,
django-database-task 0.6.0, django-tasks-db 0.13.0), the same driver
(``benchmarks/peer_driver.py``) in the queue's own virtual environment under
/tmp/ddt-peers (made on the first run, this checkout reinstalled every run),
in a throwaway project on a database of its own, created afresh:
ddt_peers_<queue> on the servers, a file under /tmp/ddt-peers for SQLite.
The measures (``--measures``, all by default):

- ``enqueue``: ``--enqueue-tasks`` (2,000) no-op tasks enqueued one by one;
- ``process``: one worker command draining a backlog of ``--tasks``
  (20,000) no-op tasks, ``--peer-tasks`` (2,000) for the peers, some twenty
  times slower: the same few seconds each;
- ``bulk``: ``--bulk-tasks`` (50,000) in one bulk enqueue (ours only);
- ``processes``: ``process`` with ``--processes 2`` (ours only);
- ``io``, ``async``: ``--io-tasks`` (4,000) tasks waiting 50 ms, sync with
  ``--concurrency 32`` and async with ``--concurrency 100`` (ours only);
- ``latency``: enqueue-to-start p50/p95/p99 of ``--latency-tasks`` (100)
  tasks, ``--latency-pause`` (0.1 s, jittered) apart, with an idle
  continuous worker at the queue's default interval (ours LISTENs on
  PostgreSQL);
- ``history``: the ``process`` rate with ``--history-rows`` (1,000,000)
  finished rows in the table (copies of a real finished row, written by
  SQL), and its ratio to the rate on the empty table just before.

The backlogs of this checkout are enqueued in bulk, the peers' one by one.
Worker rates exclude the worker's start-up and exit (timed on an empty
queue with the same options). A measure a queue lacks is null; a queue that
fails gets ``errors``. Prints JSON with every figure and the
ratios of this checkout's figures to each peer's (for latency, below 1 is
better); ``--markdown`` prints tables instead; ``--chart`` draws the rates
(needs the ``bench`` extra: matplotlib). The default sizes take about 15
minutes on a 2-core machine; ``--from-json`` redraws a saved run. Memory
over many tasks is measured by ``benchmarks/concurrency.py``.
"""

import argparse
import fcntl
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import peers_report  # noqa: E402

WORK = Path("/tmp/ddt-peers")
DJANGO = "Django>=6.1,<6.2"
DRIVERS = ("__init__.py", "common.py", "fill.py", "tasks.py", "peer_driver.py")
THIS = "this checkout"

QUEUES: dict[str, dict[str, Any]] = {
    THIS: {
        "slug": "this",
        # Rebuilt each run: the version number does not change with the code.
        "install": ["--force-reinstall", "--no-deps", str(ROOT)],
        "app": "django_database_task",
        "model": "django_database_task.DatabaseTask",
        "backend": "django_database_task.backends.DatabaseTaskBackend",
        "worker": ["run_database_tasks", "-v", "0"],
        "continuous": ["run_database_tasks", "-v", "0", "--continuous"],
        "bulk": "django_database_task.bulk_enqueue",
        "options": {
            "processes": ["--processes", "2"],
            "io": ["--concurrency", "32"],
            "async_io": ["--concurrency", "100"],
        },
    },
    "django-database-task 0.6.0": {
        "slug": "ddt_0_6_0",
        "install": ["django-database-task==0.6.0"],
        "app": "django_database_task",
        "model": "django_database_task.DatabaseTask",
        # Its default backend; PostgresNotifyDatabaseBackend is an opt-in.
        "backend": "django_database_task.backends.DatabaseTaskBackend",
        "worker": ["run_database_tasks", "-v", "0"],
        "continuous": ["run_database_tasks", "-v", "0", "--continuous"],
        "bulk": None,
        "options": {},
    },
    "django-tasks-db 0.13.0": {
        "slug": "tasks_db_0_13_0",
        "install": ["django-tasks-db==0.13.0"],
        "app": "django_tasks_db",
        "model": "django_tasks_database.DBTaskResult",
        "backend": "django_tasks_db.DatabaseBackend",
        "worker": ["db_worker", "--batch", "--no-startup-delay", "-v", "0"],
        # Its defaults: a 1 s interval, a random start-up delay under 1 s.
        "continuous": ["db_worker", "-v", "0"],
        "bulk": None,
        "options": {},
    },
}

DATABASES: dict[str, dict[str, Any]] = {
    "sqlite": {"ENGINE": "django.db.backends.sqlite3", "OPTIONS": {"timeout": 30}},
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": "postgres",
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": "127.0.0.1",
        "PORT": "3306",
        "USER": "root",
        "OPTIONS": {"charset": "utf8mb4"},
    },
}

# Taken together by one run of the driver, in this order, for every queue.
# The history comes last: the next measure's emptying of its million rows
# keeps MariaDB busy (purge, change-buffer merges: some 16,000 page reads
# during an 8 s drain) well after the DELETE returns, and would be measured
# instead of the queue.
GROUPS = [
    ("enqueue", "process"),
    ("bulk", "processes", "io", "async"),
    ("latency",),
    ("history",),
]
MEASURES = tuple(measure for group in GROUPS for measure in group)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """``command``, its output in the error when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise RuntimeError(
            f"{' '.join(command)} exited with status {done.returncode}:\n"
            f"{(done.stderr or done.stdout)[-4000:]}"
        )
    return done


def environment(queue: dict[str, Any]) -> Path:
    """The queue's virtual environment, made once; this checkout's package
    reinstalled every time."""
    venv = WORK / f"venv_{queue['slug']}"
    python = venv / "bin" / "python"
    marker = venv / "installed.json"
    base = [DJANGO, "psycopg[binary]", "mysqlclient"]
    wanted = [*base, *queue["install"]]
    if not python.exists():
        run([sys.executable, "-m", "venv", str(venv)])
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        log(f"Installing {' '.join(wanted)} in {venv}")
        run([str(python), "-m", "pip", "install", "-q", *base])
        run([str(python), "-m", "pip", "install", "-q", *queue["install"]])
        marker.write_text(json.dumps(wanted))
    elif queue["slug"] == "this":
        run([str(python), "-m", "pip", "install", "-q", *queue["install"]])
    return python


def fresh_database(queue: dict[str, Any], database: str, folder: Path) -> dict:
    """The settings of an empty database of the queue's own."""
    settings = dict(DATABASES[database])
    name = f"ddt_peers_{queue['slug']}"
    if database == "sqlite":
        settings["NAME"] = str(folder / "db.sqlite3")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(settings["NAME"] + suffix).unlink(missing_ok=True)
        return settings
    settings["NAME"] = name
    drop_database(database, name)
    if database == "postgres":
        create = f"CREATE DATABASE {name}"
        run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", create])
    else:
        create = f"CREATE DATABASE {name} CHARACTER SET utf8mb4"
        run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", create])
    return settings


def drop_database(database: str, name: str) -> None:
    if database == "postgres":
        drop = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", drop])
    elif database == "mariadb":
        drop = f"DROP DATABASE IF EXISTS {name}"
        run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", drop])


def project(queue: dict[str, Any], database: str) -> tuple[Path, dict]:
    """A throwaway Django project using ``queue`` on a fresh database, with
    the driver package copied in."""
    folder = WORK / f"project_{queue['slug']}_{database}"
    package = folder / "benchmarks"
    package.mkdir(parents=True, exist_ok=True)
    for name in DRIVERS:
        shutil.copy(ROOT / "benchmarks" / name, package / name)
    settings = fresh_database(queue, database, folder)
    (folder / "settings.py").write_text(
        textwrap.dedent(
            f"""\
            SECRET_KEY = "benchmark"
            USE_TZ = True
            DEBUG = False
            INSTALLED_APPS = ["django.contrib.contenttypes", {queue["app"]!r}]
            DATABASES = {{"default": {settings!r}}}
            TASKS = {{"default": {{"BACKEND": {queue["backend"]!r}, "QUEUES": []}}}}
            DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
            """
        )
    )
    return folder, settings


def drive(name: str, folder: Path, measures: list[str], sizes: dict) -> dict:
    """One run of the driver in the queue's environment: its figures."""
    queue = QUEUES[name]
    config = {key: queue[key] for key in ("model", "worker", "continuous", "bulk")}
    if name != THIS:
        # A backlog that takes the peers, some 20 times slower, as long.
        sizes = sizes | {"tasks": sizes["peer_tasks"]}
    config |= {"options": queue["options"], "measures": measures, "sizes": sizes}
    done = run(
        [str(WORK / f"venv_{queue['slug']}" / "bin" / "python")]
        + ["-m", "benchmarks.peer_driver", json.dumps(config)],
        cwd=folder,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "settings",
            "PYTHONPATH": str(folder),
        },
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_database(
    database: str, queues: list[str], measures: list[str], sizes: dict
) -> dict[str, dict]:
    """Every queue on one database, one group of measures at a time for all
    of them, so that the figures compared were taken minutes apart at most
    (the load of a shared machine drifts)."""
    results: dict[str, dict] = {name: {} for name in queues}
    folders: dict[str, Path] = {}
    try:
        for name in queues:
            try:
                environment(QUEUES[name])
                folders[name], _ = project(QUEUES[name], database)
            except RuntimeError as error:
                results[name]["errors"] = [str(error)[-2000:]]
        for group in GROUPS:
            chosen = [measure for measure in group if measure in measures]
            for name in folders if chosen else ():
                started = time.monotonic()
                try:
                    results[name] |= drive(name, folders[name], chosen, sizes)
                except RuntimeError as error:
                    results[name].setdefault("errors", []).append(str(error)[-2000:])
                seconds = time.monotonic() - started
                log(f"{database} / {name} / {','.join(chosen)}: {seconds:.0f} s")
    finally:
        for name in queues:
            slug = QUEUES[name]["slug"]
            if database == "sqlite":
                shutil.rmtree(WORK / f"project_{slug}_{database}", ignore_errors=True)
            else:
                drop_database(database, f"ddt_peers_{slug}")
    return results


def names(text: str, known: tuple[str, ...] | list[str], what: str) -> list[str]:
    """Comma-separated names, each checked against those known."""
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; "
            f"choose among {', '.join(known)}"
        )
    return chosen


def positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid int value: 'x'"
    return parse


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    slugs = {queue["slug"]: name for name, queue in QUEUES.items()}
    parser.add_argument(
        "--databases",
        type=lambda text: names(text, list(DATABASES), "database"),
        default=list(DATABASES),
        help="comma-separated, among sqlite,postgres,mariadb (default: all)",
    )
    parser.add_argument(
        "--queues",
        type=lambda text: names(text, list(slugs), "queue"),
        default=list(slugs),
        help=f"comma-separated, among {','.join(slugs)} (default: all)",
    )
    parser.add_argument(
        "--measures",
        type=lambda text: names(text, MEASURES, "measure"),
        default=list(MEASURES),
        help=f"comma-separated, among {','.join(MEASURES)} (default: all)",
    )
    for option, kind, default in (
        ("--enqueue-tasks", int, 2000),
        ("--tasks", int, 20_000),
        ("--peer-tasks", int, 2000),
        ("--bulk-tasks", int, 50_000),
        ("--io-tasks", int, 4000),
        ("--latency-tasks", int, 100),
        ("--latency-pause", float, 0.1),
        ("--history-rows", int, 1_000_000),
    ):
        parser.add_argument(option, type=positive(kind), default=default)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--markdown", action="store_true", help="print tables")
    parser.add_argument("--chart", type=Path, help="draw the rates to this PNG")
    parser.add_argument(
        "--from-json", type=Path, help="report a saved run instead of measuring"
    )
    options = parser.parse_args()
    if options.chart:
        peers_report.require_matplotlib()
    if options.from_json:
        try:
            report = json.loads(options.from_json.read_text())
        except (OSError, ValueError) as error:
            parser.error(f"--from-json {options.from_json}: {error}")
        if not isinstance(report, dict) or not {"sizes", "results"} <= set(report):
            parser.error(f"--from-json {options.from_json}: not a peers.py report")
        report["ratios"] = peers_report.ratios(report["results"], THIS)
    else:
        sizes = {
            key: getattr(options, key)
            for key in ("enqueue_tasks", "tasks", "peer_tasks", "bulk_tasks")
            + ("io_tasks", "latency_tasks", "latency_pause", "history_rows")
        }
        queues = [slugs[slug] for slug in options.queues]
        WORK.mkdir(parents=True, exist_ok=True)
        with open(WORK / "run.lock", "w") as lock:
            # Two runs would recreate each other's databases mid-measure.
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                parser.error(f"another peers.py run is measuring in {WORK}")
            results = {
                database: measure_database(database, queues, options.measures, sizes)
                for database in options.databases
            }
        report = {
            "sizes": sizes,
            "measures": options.measures,
            "results": results,
            "ratios": peers_report.ratios(results, THIS),
        }
    text = json.dumps(report, indent=2)
    if options.output:
        options.output.write_text(text + "\n")
    if options.chart:
        peers_report.chart(report, options.chart)
    print(peers_report.markdown(report) if options.markdown else text)


if __name__ == "__main__":
    main()
