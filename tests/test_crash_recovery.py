"""Workers killed with SIGKILL mid-run strand no task and lose none.

Four continuous workers drain a queue while, every couple of seconds, one of
them is killed (no signal handler, no cleanup, as when a machine dies or the
OOM killer strikes) and a fresh one takes its place. Every task the dead
worker held is rescued by the survivors' heartbeats and run again; no other
task runs twice.
"""

import signal
import time

import pytest
from django.db import connection
from django.tasks import TaskResultStatus

from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks
from tests.models import Execution
from tests.processes import LoggedWorker, backend_options, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

HEARTBEAT_INTERVAL = 0.5
RESCUE_AFTER = 2.0
OPTIONS = {
    "HEARTBEAT_INTERVAL": HEARTBEAT_INTERVAL,
    "RESCUE_AFTER": RESCUE_AFTER,
    "TASK_DEFAULTS": {"max_attempts": 5, "retry_backoff": 0.1, "retry_backoff_max": 1},
}
WORKERS = 4
KILL_EVERY = 2.0
# A statement the killed worker had sent may still commit on the server a
# moment after its death; it is long done by then, and no rescue can come
# before RESCUE_AFTER - HEARTBEAT_INTERVAL.
SETTLE = 0.3


def held_by(worker: LoggedWorker) -> set:
    return set(
        DatabaseTask.objects.filter(
            status=TaskResultStatus.RUNNING, worker_id__startswith=worker.id_prefix
        ).values_list("pk", flat=True)
    )


def freeze_one_holding_a_task(workers: list[LoggedWorker]) -> LoggedWorker | None:
    """SIGSTOP the workers one by one until one is caught holding a task, and
    return it (frozen, so what it holds cannot change); let the others go."""
    for worker in workers:
        worker.process.send_signal(signal.SIGSTOP)
        if held_by(worker):
            return worker
        worker.process.send_signal(signal.SIGCONT)
    return None


def successful() -> int:
    return DatabaseTask.objects.filter(status=TaskResultStatus.SUCCESSFUL).count()


def test_workers_killed_mid_run_strand_no_task_and_lose_none(
    settings, test_database_env, tmp_path
):
    # SQLite serialises every write: a smaller run proves the same there.
    size, kills = (300, 2) if connection.vendor == "sqlite" else (3000, 5)
    env = backend_options(settings, test_database_env, **OPTIONS)
    for number in range(size):
        tasks.record_every_run.enqueue(f"task-{number}")

    def start() -> LoggedWorker:
        return LoggedWorker(env, tmp_path, "--continuous", "--interval", "0.2")

    began = time.monotonic()
    workers = [start() for _ in range(WORKERS)]
    killed: list[LoggedWorker] = []
    # Held by a victim just before its kill (frozen); held by it once dead.
    in_flight: set = set()
    stranded: set = set()
    try:
        for _ in range(kills):
            due = time.monotonic() + KILL_EVERY
            victim = wait_until(
                lambda due=due: (
                    time.monotonic() >= due and freeze_one_holding_a_task(workers)
                ),
                timeout=30,
                workers=workers,
                what="a worker holding a task",
            )
            in_flight |= held_by(victim)
            victim.kill()
            stranded |= held_by(victim)
            workers.remove(victim)
            killed.append(victim)
            workers.append(start())
            time.sleep(SETTLE)
            stranded |= held_by(victim)
        remaining_after_kills = size - successful()
        wait_until(
            lambda: successful() == size,
            timeout=120,
            workers=workers,
            what="every task to succeed",
        )
        drained = time.monotonic() - began
        # The dead leave the registry once nothing of theirs is left to rescue.
        live = {worker.pid for worker in workers}
        wait_until(
            lambda: (
                set(DatabaseTaskWorker.objects.values_list("pid", flat=True)) == live
            ),
            timeout=10 * RESCUE_AFTER,
            workers=workers,
            what="the dead workers to be pruned from the registry",
        )
        exit_codes = [worker.stop() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()

    assert exit_codes == [0] * WORKERS, [worker.errors() for worker in workers]
    for worker in workers:
        assert "Traceback" not in worker.errors()
    assert remaining_after_kills > 0, "the queue was drained before the last kill"
    assert not DatabaseTask.objects.exclude(status=TaskResultStatus.SUCCESSFUL).exists()
    assert Execution.objects.count() == size

    rows = DatabaseTask.objects.values_list("pk", "args", "worker_ids")
    claimed_again = {pk for pk, _, worker_ids in rows if len(worker_ids) > 1}
    key_of = {args[0]: pk for pk, args, _ in rows}
    executed_again = {
        key_of[key]
        for key in Execution.objects.filter(duplicates__gt=0).values_list(
            "key", flat=True
        )
    }
    ran_twice = claimed_again | executed_again
    assert executed_again <= claimed_again
    assert stranded, "no kill caught a worker holding a task"
    assert ran_twice <= in_flight | stranded, (
        "a task that was not in flight at a kill ran twice"
    )
    assert stranded <= claimed_again, "a task stranded by a kill was not run again"
    # The first attempt of each task run again was on a killed worker.
    killed_prefixes = tuple(worker.id_prefix for worker in killed)
    for pk, _, worker_ids in rows:
        if pk in claimed_again:
            assert all(wid.startswith(killed_prefixes) for wid in worker_ids[:-1])
    print(
        f"\n{connection.vendor}: {size} tasks, {WORKERS} workers, {kills} kills; "
        f"{len(stranded)} stranded, {len(claimed_again)} claimed "
        f"twice, {len(executed_again)} executed twice; drained in {drained:.1f} s"
    )
