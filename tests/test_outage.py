"""A database that goes away mid-run costs no task and no worker.

Two continuous workers drain 3,000 tasks from a database server of the
test's own, which is stopped for ten seconds mid-run and started again. The
workers wait the outage out, saying so once, write the outcomes they could
not store, and carry on: every task runs once (but for one whose own write
committed as the server went away, its answer lost, which runs again), and
the workers still stop cleanly when asked. The shared servers are never touched.

Each runs once per suite: the PostgreSQL one in the suite's PostgreSQL run,
the MariaDB one in its MySQL run.
"""

import json
import os
import re
import time
from urllib.parse import urlparse

import pytest

from tests.processes import (
    LoggedWorker,
    PrivateMariaDB,
    PrivatePostgres,
    run_django,
    wait_until,
)

pytestmark = pytest.mark.acceptance
SIZE = 3000
OUTAGE = 10.0
DATABASE = "ddt_outage"
OPTIONS = {
    # Far above the outage: a worker cut off for less than RESCUE_AFTER keeps
    # its tasks, so nothing is rescued and nothing runs twice.
    "HEARTBEAT_INTERVAL": 1,
    "RESCUE_AFTER": 60,
    # A task whose own query hit the outage fails that attempt only.
    "TASK_DEFAULTS": {"max_attempts": 3, "retry_backoff": 0.1, "retry_backoff_max": 1},
}
ENQUEUE = (
    "from tests import tasks\n"
    f"for number in range({SIZE}):\n"
    "    tasks.record_every_run.enqueue(f'task-{number}')\n"
)
# All a worker logs for one outage: when it began and ended, for its loop and
# for its heartbeat thread, once each, however many statements failed.
OUTAGE_LOG = {
    "the outage began": r"Worker \S+ could not (reach the database|store the outcome "
    r"of a task) \(.+\); waiting for the database, with growing pauses\.",
    "the outage ended": r"Worker \S+ reached the database again after [\d.]+ s\.",
    "heartbeats failed": r"Worker \S+ could not heartbeat \(.+\); trying again "
    r"every 1 s\.",
    "heartbeats resumed": r"Worker \S+ heartbeats again\.",
}
# Also expected: a claim that committed but whose answer was lost in the
# outage, and a task whose own query hit it, put back for another attempt.
ALSO_EXPECTED = (
    r"Worker \S+ released 1 task\(s\) whose claim it never heard back from\.",
    r"READY \S+ tests\.tasks\.record_every_run",
)
SUITE_SCHEMES = {
    PrivatePostgres: ("postgres", "postgresql"),
    PrivateMariaDB: ("mysql",),
}


@pytest.fixture
def server(request):
    """A private server of the kind ``request.param``, set up and started;
    stopped and removed afterwards, whatever happened."""
    kind = request.param
    suite_scheme = urlparse(os.environ.get("DATABASE_URL", "")).scheme
    if suite_scheme not in SUITE_SCHEMES[kind]:
        pytest.skip(
            f"runs once per suite, in its {SUITE_SCHEMES[kind][0]} run "
            f"(DATABASE_URL={SUITE_SCHEMES[kind][0]}://...)"
        )
    missing = kind.missing()
    if missing:
        pytest.skip(missing)
    server = kind()
    try:
        server.setup()
        server.start()
        yield server
    finally:
        server.destroy()


def log_messages(log: str) -> list[str]:
    """A worker's stderr as messages; a database error may span lines, the
    later ones indented."""
    messages: list[str] = []
    for line in log.splitlines():
        if line.startswith("\t") and messages:
            messages[-1] += "\n" + line
        elif line:
            messages.append(line)
    return messages


def registered(server) -> int:
    [(count,)] = server.query(
        DATABASE, "SELECT COUNT(*) FROM django_database_task_worker"
    )
    return count


def statuses(server) -> dict[str, int]:
    return dict(
        server.query(
            DATABASE,
            "SELECT status, COUNT(*) FROM django_database_task GROUP BY status",
        )
    )


@pytest.mark.parametrize(
    "server",
    [PrivatePostgres, PrivateMariaDB],
    ids=["postgresql", "mariadb"],
    indirect=True,
)
def test_workers_ride_out_a_database_restart(server, tmp_path):
    server.create_database(DATABASE)
    # tests/settings.py adds a second database, which Django's MySQL checks open.
    server.create_database(f"{DATABASE}_tasks")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DDT_TEST_")
    } | {
        "DATABASE_URL": server.url(DATABASE),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DDT_TEST_TASK_OPTIONS": json.dumps(OPTIONS),
    }
    run_django(env, "migrate", "--verbosity", "0")
    run_django(env, "shell", "--command", ENQUEUE)

    workers = [
        LoggedWorker(
            env, tmp_path, "--continuous", "--interval", "0.2", "--skip-checks"
        )
        for _ in range(2)
    ]
    try:
        wait_until(
            lambda: (
                statuses(server).get("SUCCESSFUL", 0) >= SIZE // 10
                and registered(server) == len(workers)
            ),
            timeout=60,
            workers=workers,
            what="both workers to register and a tenth of the tasks to succeed",
        )
        done_before = statuses(server).get("SUCCESSFUL", 0)
        server.stop()
        stopped_at = time.monotonic()
        wait_until(
            lambda: time.monotonic() - stopped_at >= OUTAGE,
            timeout=2 * OUTAGE,
            workers=workers,
            what="the end of the outage",
        )
        server.start()
        outage = time.monotonic() - stopped_at
        try:
            wait_until(
                lambda: statuses(server) == {"SUCCESSFUL": SIZE},
                timeout=90,
                workers=workers,
                what="every task to succeed after the outage",
            )
        except AssertionError as stuck:
            logs = "\n".join(worker.errors()[-3000:] for worker in workers)
            raise AssertionError(f"{stuck}: {statuses(server)}\n{logs}") from None
        recovered = time.monotonic() - stopped_at - outage
        still_running = [worker.alive() for worker in workers]
        exit_codes = [worker.stop() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()

    logs = [worker.errors() for worker in workers]
    worker_ids = [
        json.loads(ids) if isinstance(ids, str | bytes) else ids
        for (ids,) in server.query(
            DATABASE, "SELECT worker_ids FROM django_database_task"
        )
    ]
    print(
        f"\n{server.scheme}: {done_before} of {SIZE} done when the server stopped "
        f"for {outage:.1f} s; all done {recovered:.1f} s after it was back; "
        f"{sum(len(ids) > 1 for ids in worker_ids)} task(s) claimed more than once"
    )
    for log in logs:
        print(log)
    assert done_before < SIZE, "the queue was drained before the outage"
    assert still_running == [True, True]
    assert exit_codes == [0, 0], logs
    [(executions,)] = server.query(DATABASE, "SELECT COUNT(*) FROM tests_execution")
    assert executions == SIZE
    # A task whose own write committed just as the server went away, its
    # answer lost, failed that attempt and ran again: no queue can tell.
    # Only such a task, retried after a database error, may have run twice.
    column = "`key`" if server.scheme == "mysql" else '"key"'
    ran_twice = {
        key
        for (key,) in server.query(
            DATABASE, f"SELECT {column} FROM tests_execution WHERE duplicates > 0"
        )
    }
    retried = re.findall(
        r"^READY (\S+) tests\.tasks\.record_every_run$", "\n".join(logs), re.M
    )
    task_keys = {
        str(task_id).replace("-", ""): json.loads(args)[0]
        if isinstance(args, str | bytes)
        else args[0]
        for task_id, args in server.query(
            DATABASE, "SELECT id, args FROM django_database_task"
        )
    }
    assert ran_twice <= {task_keys[task_id.replace("-", "")] for task_id in retried}
    for log in logs:
        assert "Traceback" not in log
        messages = log_messages(log)
        for what, pattern in OUTAGE_LOG.items():
            said = [m for m in messages if re.fullmatch(pattern, m, re.DOTALL)]
            assert len(said) == 1, f"{what}: {said}"
        expected = [*OUTAGE_LOG.values(), *ALSO_EXPECTED]
        assert [
            m
            for m in messages
            if not any(re.fullmatch(p, m, re.DOTALL) for p in expected)
        ] == []
