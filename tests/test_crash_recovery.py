"""Workers killed with SIGKILL mid-run strand no task and lose none, and the
tasks a killed worker had only claimed ahead cost no attempt.

Four continuous workers drain a queue while, every couple of seconds, one of
them is killed (no signal handler, no cleanup, as when a machine dies or the
OOM killer strikes) and a fresh one takes its place. Every task the dead
worker held is rescued by the survivors' heartbeats and run again; no other
task runs twice. A task it had only claimed ahead runs as if never claimed.
"""

import signal
import time
from dataclasses import dataclass

import pytest
from django.db import connection
from django.tasks import TaskResultStatus

from django_database_task.engine.transitions import WORKER_LOST_PATH
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks
from tests.models import Execution
from tests.processes import LoggedWorker, backend_options, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.acceptance]

WORKERS = 4
KILL_EVERY = 1.5
# Long enough that the workers are still busy at the last kill.
TASK_SECONDS = 0.02
RETRIES = {"max_attempts": 5, "retry_backoff": 0.1, "retry_backoff_max": 1}
# A statement the killed worker had sent may still commit on the server a
# moment after its death; it is long done by then, and no rescue can come
# before RESCUE_AFTER - HEARTBEAT_INTERVAL.
SETTLE = 0.3


@dataclass(frozen=True)
class Plan:
    size: int
    kills: int
    heartbeat_interval: float
    rescue_after: float
    # SIGSTOP a worker to see what it holds before killing it, so that every
    # kill strands a task.
    freeze: bool


PLANS = {
    "postgresql": Plan(3000, 5, heartbeat_interval=0.5, rescue_after=2, freeze=True),
    "mysql": Plan(3000, 5, heartbeat_interval=0.5, rescue_after=2, freeze=True),
    # SQLite has one write lock for every worker and heartbeat: a heartbeat
    # may wait seconds for it among four busy workers (more on a loaded
    # machine), so a two-second RESCUE_AFTER would take tasks from live
    # workers; and a worker frozen while holding the lock would stall all.
    "sqlite": Plan(1000, 2, heartbeat_interval=1, rescue_after=10, freeze=False),
}


def held_by(worker: LoggedWorker) -> set:
    return set(
        DatabaseTask.objects.filter(
            status=TaskResultStatus.RUNNING, worker_id__startswith=worker.id_prefix
        ).values_list("pk", flat=True)
    )


def one_holding_a_task(
    workers: list[LoggedWorker], *, freeze: bool
) -> LoggedWorker | None:
    """A worker holding a task; with ``freeze``, SIGSTOP the workers one by
    one until one is caught holding a task and return it frozen (so what it
    holds cannot change before the kill), letting the others go on."""
    for worker in workers:
        if freeze:
            worker.process.send_signal(signal.SIGSTOP)
        if held_by(worker):
            return worker
        if freeze:
            worker.process.send_signal(signal.SIGCONT)
    return None


def successful() -> int:
    return DatabaseTask.objects.filter(status=TaskResultStatus.SUCCESSFUL).count()


def test_workers_killed_mid_run_strand_no_task_and_lose_none(
    settings, test_database_env, tmp_path
):
    plan = PLANS[connection.vendor]
    size, kills = plan.size, plan.kills
    env = backend_options(
        settings,
        test_database_env,
        HEARTBEAT_INTERVAL=plan.heartbeat_interval,
        RESCUE_AFTER=plan.rescue_after,
        TASK_DEFAULTS=RETRIES,
    )
    for number in range(size):
        tasks.record_every_run.enqueue(f"task-{number}", TASK_SECONDS)

    def start() -> LoggedWorker:
        return LoggedWorker(env, tmp_path, "--continuous", "--interval", "0.2")

    began = time.monotonic()
    workers = [start() for _ in range(WORKERS)]
    killed: list[LoggedWorker] = []
    # Held by a victim just before its kill; held by it once dead.
    in_flight: set = set()
    stranded: set = set()
    # Which victim last stranded each task.
    stranded_by: dict = {}
    try:
        for kill in range(kills):
            due = time.monotonic() + KILL_EVERY

            def next_victim(due=due, kill=kill) -> LoggedWorker | None:
                if successful() == size:
                    raise AssertionError(f"the queue ran dry before kill {kill + 1}")
                if time.monotonic() < due:
                    return None
                return one_holding_a_task(workers, freeze=plan.freeze)

            victim = wait_until(
                next_victim, timeout=30, workers=workers, what="a worker holding a task"
            )
            in_flight |= held_by(victim)
            victim.kill()
            workers.remove(victim)
            killed.append(victim)
            workers.append(start())
            time.sleep(SETTLE)
            for pk in held_by(victim):
                stranded.add(pk)
                stranded_by[pk] = victim.id_prefix
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
            timeout=5 * plan.rescue_after,
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
    if plan.freeze:
        assert stranded, "no kill caught a worker holding a task"
    assert ran_twice <= in_flight | stranded, (
        "a task that was not in flight at a kill ran twice"
    )
    killed_prefixes = tuple(worker.id_prefix for worker in killed)
    for pk, _, worker_ids in rows:
        # The first attempt of each task run again was on a killed worker.
        if pk in claimed_again:
            assert all(wid.startswith(killed_prefixes) for wid in worker_ids[:-1])
        # A stranded task ran to the end on another worker: its attempt on
        # the killed one counted if it had started there, not if it had
        # only been claimed ahead.
        if pk in stranded:
            assert not worker_ids[-1].startswith(stranded_by[pk])
    print(
        f"\n{connection.vendor}: {size} tasks, {WORKERS} workers, {kills} kills; "
        f"{len(stranded)} stranded ({len(stranded - claimed_again)} claimed ahead), "
        f"{len(claimed_again)} claimed twice, {len(executed_again)} executed "
        f"twice; drained in {drained:.1f} s"
    )


# Short enough to learn a prefetch of several tasks per slot, long enough
# that a worker names at most one task beyond its slots in its started list.
AHEAD_TASK_SECONDS = {1: 0.005, 4: 0.02}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_worker_killed_with_tasks_claimed_ahead_costs_them_no_attempt(
    settings, test_database_env, tmp_path, concurrency
):
    """With one attempt each, the tasks a killed worker had started fail
    (WorkerLost), and those it had only claimed ahead run elsewhere, as
    if never claimed. Started: one running per slot, one done and not yet
    stored per slot, and the one named to start next."""
    started_at_most = 2 * concurrency + 1
    env = backend_options(
        settings, test_database_env, HEARTBEAT_INTERVAL=0.5, RESCUE_AFTER=2
    )
    size = 1_000
    for number in range(size):
        tasks.record_every_run.enqueue(
            f"task-{number}", AHEAD_TASK_SECONDS[concurrency]
        )
    args = ("--continuous", "--interval", "0.2", "--concurrency", str(concurrency))
    victim = LoggedWorker(env, tmp_path, *args)
    rescuer = None
    try:

        def holding_tasks_claimed_ahead() -> bool:
            if successful() > size // 2:
                raise AssertionError("the queue ran low before the kill")
            if successful() < 20:  # Still learning how long tasks take.
                return False
            victim.process.send_signal(signal.SIGSTOP)
            if len(held_by(victim)) >= started_at_most + 2:
                return True
            victim.process.send_signal(signal.SIGCONT)
            return False

        wait_until(
            holding_tasks_claimed_ahead,
            timeout=60,
            workers=[victim],
            what="the worker to hold tasks claimed ahead",
        )
        victim.kill()
        time.sleep(SETTLE)
        held = held_by(victim)
        rescuer = LoggedWorker(env, tmp_path, *args)
        wait_until(
            lambda: (
                not DatabaseTask.objects.filter(
                    status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]
                ).exists()
            ),
            timeout=120,
            workers=[rescuer],
            what="every task to finish",
        )
        assert rescuer.stop() == 0, rescuer.errors()
    finally:
        victim.kill()
        if rescuer is not None:
            rescuer.kill()

    failed = DatabaseTask.objects.filter(status=TaskResultStatus.FAILED)
    assert set(failed.values_list("pk", flat=True)) <= held
    assert failed.count() <= started_at_most
    for task in failed:
        assert task.errors[-1]["exception_class_path"] == WORKER_LOST_PATH
    claimed_ahead = held - set(failed.values_list("pk", flat=True))
    assert len(claimed_ahead) >= 2
    for task in DatabaseTask.objects.filter(pk__in=claimed_ahead):
        assert task.status == TaskResultStatus.SUCCESSFUL
        assert len(task.worker_ids) == 1
        assert not task.worker_ids[0].startswith(victim.id_prefix)
        assert task.errors == []
    assert successful() == size - failed.count()
    assert not Execution.objects.filter(duplicates__gt=0).exists()
    print(
        f"\n{connection.vendor}, concurrency {concurrency}: killed holding "
        f"{len(held)} tasks; {failed.count()} failed, {len(claimed_ahead)} "
        "ran elsewhere as never claimed"
    )
