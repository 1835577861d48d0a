"""Rescue with real processes and real timing: a killed worker's task runs
again within RESCUE_AFTER plus one heartbeat, a live worker's long task is
never taken from it, and rescuers racing each other rescue each task once."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone

from django_database_task.engine import registry
from django_database_task.engine.maintenance import rescuer
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks
from tests.models import Execution
from tests.processes import LoggedWorker, backend_options, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.acceptance]

RETRIES = {"max_attempts": 3, "retry_backoff": 0.1, "retry_backoff_max": 0.1}
# Claims, the retry backoff and the idle wait of the rescuing worker.
MARGIN = 1.0


def row(result) -> DatabaseTask:
    return DatabaseTask.objects.get(pk=result.id)


def registered(worker: LoggedWorker) -> bool:
    return DatabaseTaskWorker.objects.filter(pid=worker.pid).exists()


def error_paths(task: DatabaseTask) -> list[str]:
    return [error["exception_class_path"] for error in task.errors]


def start(env, tmp_path) -> LoggedWorker:
    return LoggedWorker(env, tmp_path, "--continuous", "--interval", "0.2")


def test_a_killed_workers_task_runs_again_within_rescue_after_plus_a_heartbeat(
    settings, test_database_env, tmp_path
):
    heartbeat, rescue_after = 0.5, 2.0
    env = backend_options(
        settings,
        test_database_env,
        HEARTBEAT_INTERVAL=heartbeat,
        RESCUE_AFTER=rescue_after,
        TASK_DEFAULTS=RETRIES,
    )
    result = tasks.hang_on_first_attempt.enqueue("stranded", 60)
    victim = start(env, tmp_path)
    survivor = None
    try:
        wait_until(
            lambda: row(result).status == TaskResultStatus.RUNNING,
            timeout=30,
            workers=[victim],
            what="the first attempt",
        )
        survivor = start(env, tmp_path)
        wait_until(
            lambda: registered(survivor),
            timeout=30,
            workers=[survivor],
            what="the second worker",
        )
        victim.kill()
        killed_at = time.monotonic()
        wait_until(
            lambda: row(result).status == TaskResultStatus.SUCCESSFUL,
            timeout=rescue_after + heartbeat + 30,
            workers=[survivor],
            what="the task to run again",
        )
        took = time.monotonic() - killed_at
        exit_code = survivor.stop()
    finally:
        for worker in (victim, survivor):
            if worker is not None:
                worker.kill()

    print(f"\nrun again {took:.2f} s after the kill (RESCUE_AFTER {rescue_after} s)")
    # Not before the victim's last heartbeat went stale, nor long after.
    assert rescue_after - heartbeat - 0.25 < took < rescue_after + heartbeat + MARGIN
    task = row(result)
    assert [worker_id.split(":")[1] for worker_id in task.worker_ids] == [
        str(victim.pid),
        str(survivor.pid),
    ]
    assert error_paths(task) == [rescuer.WORKER_LOST_PATH]
    assert task.return_value == 2
    assert Execution.objects.filter(key="stranded", duplicates=0).exists()
    assert exit_code == 0, survivor.errors()


def test_a_live_workers_long_task_is_never_rescued(
    settings, test_database_env, tmp_path
):
    """Twenty seconds is four times RESCUE_AFTER: only the heartbeat thread
    keeps the task with its worker while the other worker rescues all along."""
    env = backend_options(
        settings,
        test_database_env,
        HEARTBEAT_INTERVAL=1,
        RESCUE_AFTER=5,
        TASK_DEFAULTS=RETRIES,
    )
    result = tasks.sleep_then_record.enqueue("long", 20)
    runner = start(env, tmp_path)
    other = None
    try:
        holder = wait_until(
            lambda: row(result).worker_id,
            timeout=30,
            workers=[runner],
            what="the task to start",
        )
        other = start(env, tmp_path)

        def finished() -> bool:
            task = row(result)
            if task.status == TaskResultStatus.RUNNING:
                assert task.worker_id == holder, "the task changed hands"
            return task.status != TaskResultStatus.RUNNING

        wait_until(finished, timeout=60, workers=[runner, other], what="the task")
        other_heartbeat = DatabaseTaskWorker.objects.get(pid=other.pid)
        exit_codes = [runner.stop(), other.stop()]
    finally:
        for worker in (runner, other):
            if worker is not None:
                worker.kill()

    task = row(result)
    assert task.status == TaskResultStatus.SUCCESSFUL
    assert task.worker_ids == [holder]
    assert task.errors == []
    assert Execution.objects.filter(key="long", duplicates=0).exists()
    # The other worker heartbeated (and so ran the rescuer) until the end.
    assert other_heartbeat.last_heartbeat_at > task.last_attempted_at + timedelta(
        seconds=15
    )
    assert exit_codes == [0, 0]


def test_rescuers_racing_each_other_rescue_each_task_once():
    """Every live worker's heartbeat runs the rescuer: two at once, on
    connections of their own, must not both rescue (and both charge an
    attempt to) the same task."""
    backend = task_backends["default"]
    dead = "dead-host:1:abcdef"
    registry.register(backend, dead)
    registry.abandon(backend, dead)
    now = timezone.now()
    DatabaseTask.objects.bulk_create(
        DatabaseTask(
            task_path="tests.tasks.add",
            queue_name="default",
            backend_name="default",
            status=TaskResultStatus.RUNNING,
            args=[number, 1],
            enqueued_at=now,
            due_at=now,
            last_attempted_at=now,
            worker_id=dead,
            worker_ids=[dead],
            # Half have attempts left, half have used them.
            max_attempts=3 if number % 2 else 1,
            retry_backoff=0.1,
        )
        for number in range(200)
    )
    start_together = threading.Barrier(2, timeout=30)
    rescued: dict[str, int] = {}
    failures: list[BaseException] = []

    def rescue_until_none_left() -> None:
        name = threading.current_thread().name
        rescued[name] = 0
        try:
            start_together.wait()
            for _ in range(20):
                count = rescuer.rescue(task_backends["default"])
                rescued[name] += count
                if not count:
                    return
        except BaseException as error:  # Reported by the test, not lost.
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=rescue_until_none_left) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    print(f"\nrescued per rescuer: {sorted(rescued.values())}")
    assert failures == []
    assert sum(rescued.values()) == 200
    rows = list(DatabaseTask.objects.all())
    assert all(error_paths(task) == [rescuer.WORKER_LOST_PATH] for task in rows)
    assert sorted(task.status for task in rows) == ["FAILED"] * 100 + ["READY"] * 100
    assert all(task.worker_id == "" for task in rows)
