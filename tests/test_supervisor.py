"""run_database_tasks --processes: worker processes under a supervisor, as
real processes on the test database. Children that die are replaced and
their tasks rescued, recycled ones lose nothing, signals stop them all
gracefully, and the exit status sums up the run."""

import contextlib
import os
import re
import signal
import socket
from pathlib import Path

import pytest
from django.tasks import TaskResultStatus

from django_database_task.engine.maintenance.rescuer import WORKER_LOST_PATH
from django_database_task.engine.supervisor import (
    FIRST_PAUSE,
    MAX_PAUSE,
    STABLE_AFTER,
    restart_pause,
)
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks
from tests.models import Execution
from tests.processes import LoggedWorker, backend_options, run_command, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.acceptance]

FAST_RESCUE = {
    "HEARTBEAT_INTERVAL": 0.2,
    "RESCUE_AFTER": 1.0,
    "TASK_DEFAULTS": {"max_attempts": 2, "retry_backoff": 0.01},
}


def status_of(result) -> str:
    return DatabaseTask.objects.get(pk=result.id).status


def registered_pids() -> set[int]:
    return set(DatabaseTaskWorker.objects.values_list("pid", flat=True))


def running_holders() -> set[str]:
    return set(
        DatabaseTask.objects.filter(status=TaskResultStatus.RUNNING).values_list(
            "worker_id", flat=True
        )
    )


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def database_handles(pid: int) -> list[str]:
    """The process's open files that may be a database connection: network
    sockets (socket pairs are Unix ones) and SQLite files."""
    unix = {
        line.split()[6] for line in Path("/proc/net/unix").read_text().splitlines()[1:]
    }
    handles = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                if target[len("socket:[") : -1] not in unix:
                    handles.append(target)
            elif "sqlite3" in target:
                handles.append(target)
    return handles


def end(supervisor: LoggedWorker) -> None:
    """Kill the supervisor and its children: a failed test leaves no worker
    running on into the next (orphans would stop, but after their task)."""
    for pid in children_of(supervisor.pid) if supervisor.alive() else []:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    supervisor.kill()


def prefix(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:"


def test_restart_pauses_double_up_to_a_minute_and_start_over_after_a_long_life():
    pauses = []
    pause = 0.0
    for _ in range(9):
        pause = restart_pause(pause, lived=0.5)
        pauses.append(pause)
    assert pauses == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert restart_pause(MAX_PAUSE, lived=STABLE_AFTER) == 0
    assert restart_pause(0.0, lived=0.5) == FIRST_PAUSE


def test_a_killed_child_is_replaced_and_its_task_rescued(
    settings, test_database_env, tmp_path
):
    env = backend_options(settings, test_database_env, **FAST_RESCUE)
    hung = tasks.hang_on_first_attempt.enqueue("hung", 60)
    supervisor = LoggedWorker(
        env, tmp_path, "--processes", "2", "--continuous", "--interval", "0.2"
    )
    try:
        first = wait_until(
            lambda: len(registered_pids()) == 2 and registered_pids(),
            timeout=60,
            workers=[supervisor],
            what="two worker processes",
        )
        # The supervisor is no worker, and holds no connection.
        assert supervisor.pid not in first
        assert not database_handles(supervisor.pid)
        assert database_handles(os.getpid())  # as this one, which has queried
        [holder] = wait_until(
            running_holders, timeout=30, workers=[supervisor], what="the claim"
        )
        victim = DatabaseTaskWorker.objects.get(pk=holder).pid
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: status_of(hung) == TaskResultStatus.SUCCESSFUL,
            timeout=60,
            workers=[supervisor],
            what="the rescued task to run again",
        )
        replaced = wait_until(
            lambda: (
                len(pids := registered_pids() - {victim}) == 2 and pids - first and pids
            ),
            timeout=30,
            workers=[supervisor],
            what="a new worker process in the registry",
        )
        exit_code = supervisor.stop()
    finally:
        end(supervisor)
    assert exit_code == 0, supervisor.errors()
    assert supervisor.pid not in replaced
    row = DatabaseTask.objects.get(pk=hung.id)
    assert len(row.worker_ids) == 2
    assert row.worker_ids[0].startswith(prefix(victim))
    assert row.errors[0]["exception_class_path"] == WORKER_LOST_PATH
    assert f"Worker process {victim} ended (killed by SIGKILL)" in supervisor.errors()
    assert "restarting it in 1 s" in supervisor.errors()
    assert "Traceback" not in supervisor.errors()
    # The children stopped gracefully: none is left registered as live.
    assert registered_pids() <= {victim}


def test_recycling_after_max_tasks_per_child_keeps_every_task(
    test_database_env, tmp_path
):
    for number in range(200):
        tasks.record.enqueue(f"task-{number}")
    supervisor = LoggedWorker(
        test_database_env,
        tmp_path,
        *("--processes", "2", "--max-tasks-per-child", "30"),
    )
    assert supervisor.process.wait(timeout=600) == 0, supervisor.errors()
    assert Execution.objects.count() == 200
    assert not Execution.objects.filter(duplicates__gt=0).exists()
    assert not DatabaseTask.objects.exclude(status="SUCCESSFUL").exists()
    attempts = list(DatabaseTask.objects.values_list("worker_ids", flat=True))
    assert all(len(worker_ids) == 1 for worker_ids in attempts)
    per_worker: dict[str, int] = {}
    for [worker_id] in attempts:
        per_worker[worker_id] = per_worker.get(worker_id, 0) + 1
    assert len(per_worker) >= 7  # 200 tasks, at most 30 each
    assert max(per_worker.values()) <= 30
    output = supervisor.output()
    assert output.count("recycled after 30 task(s); starting a fresh one.") >= 6
    total = re.search(
        r"Processed (\d+) task\(s\) in (\d+) worker process\(es\)\.\n$", output
    )
    assert total, output[-300:]
    assert int(total[1]) == 200
    assert int(total[2]) >= len(per_worker)


def test_sigterm_stops_every_child_gracefully(test_database_env, tmp_path):
    slow = [tasks.sleep_then_record.enqueue(f"slow-{n}", 2) for n in range(2)]
    waiting = tasks.record.using(priority=-1).enqueue("next")
    supervisor = LoggedWorker(
        test_database_env, tmp_path, "--processes", "2", "--continuous"
    )
    try:
        wait_until(
            lambda: len(running_holders()) == 2,
            timeout=60,
            workers=[supervisor],
            what="each child to run a slow task",
        )
        exit_code = supervisor.stop()
    finally:
        end(supervisor)
    assert exit_code == 0, supervisor.errors()
    for result in slow:
        assert status_of(result) == TaskResultStatus.SUCCESSFUL
    assert Execution.objects.filter(key__startswith="slow-").count() == 2
    assert status_of(waiting) == TaskResultStatus.READY
    assert not DatabaseTaskWorker.objects.exists()
    output = supervisor.output()
    assert "Stopping the worker processes after their running task(s)" in output
    assert output.count("Stopped on signal.") == 2
    assert output.endswith("Processed 2 task(s) in 2 worker process(es).\n")


def test_a_second_sigterm_stops_the_children_at_once(test_database_env, tmp_path):
    for number in range(2):
        tasks.sleep_then_record.enqueue(f"very-slow-{number}", 60)
    supervisor = LoggedWorker(
        test_database_env, tmp_path, "--processes", "2", "--continuous"
    )
    try:
        wait_until(
            lambda: len(running_holders()) == 2,
            timeout=60,
            workers=[supervisor],
            what="each child to run a slow task",
        )
        supervisor.process.send_signal(signal.SIGTERM)
        # Two signals a child has not handled yet would count as one.
        wait_until(
            lambda: supervisor.output().count("Stopping after the running task") == 2,
            timeout=30,
            workers=[supervisor],
            what="both children to start stopping",
        )
        supervisor.process.send_signal(signal.SIGTERM)
        exit_code = supervisor.process.wait(timeout=30)
    finally:
        end(supervisor)
    assert exit_code == -signal.SIGTERM
    assert DatabaseTask.objects.filter(status="RUNNING").count() == 2
    assert not Execution.objects.exists()
    # Each child marked itself dead, so that its task is rescued at once.
    beats = DatabaseTaskWorker.objects.values_list("last_heartbeat_at", flat=True)
    assert [beat.year for beat in beats] == [2000, 2000]


def test_a_child_over_its_memory_limit_is_replaced(test_database_env, tmp_path):
    added = [tasks.add.enqueue(n, n) for n in range(3)]
    supervisor = LoggedWorker(
        test_database_env,
        tmp_path,
        *("--processes", "1", "--max-memory-per-child", "16"),
    )
    assert supervisor.process.wait(timeout=120) == 0, supervisor.errors()
    rows = DatabaseTask.objects.filter(pk__in=[result.id for result in added])
    assert {row.status for row in rows} == {"SUCCESSFUL"}
    # No Django process fits in 16 MiB: each child ran one task.
    assert len({row.worker_ids[0] for row in rows}) == 3
    assert supervisor.output().count("over --max-memory-per-child 16") == 3


def test_a_child_that_keeps_dying_is_restarted_after_growing_pauses(
    settings, test_database_env, tmp_path
):
    env = backend_options(settings, test_database_env, **FAST_RESCUE)
    deadly = tasks.kill_own_process.enqueue()
    supervisor = LoggedWorker(
        env, tmp_path, "--processes", "1", "--continuous", "--interval", "0.2"
    )
    try:
        # Each attempt kills its child; the next child rescues the task,
        # and after its two attempts marks it FAILED.
        wait_until(
            lambda: status_of(deadly) == TaskResultStatus.FAILED,
            timeout=60,
            workers=[supervisor],
            what="the task to use up its attempts",
        )
        exit_code = supervisor.stop()
    finally:
        end(supervisor)
    assert exit_code == 0, supervisor.errors()
    errors = supervisor.errors()
    first = errors.index("(killed by SIGKILL)")
    assert errors.index("restarting it in 1 s.", first) < errors.index(
        "restarting it in 2 s."
    )
    assert len(DatabaseTask.objects.get(pk=deadly.id).worker_ids) == 2


def test_children_stop_when_their_supervisor_is_killed(test_database_env, tmp_path):
    supervisor = LoggedWorker(
        test_database_env, tmp_path, "--processes", "2", "--continuous"
    )
    try:
        children = wait_until(
            lambda: len(registered_pids()) == 2 and registered_pids(),
            timeout=60,
            workers=[supervisor],
            what="two worker processes",
        )
    finally:
        supervisor.kill()
    wait_until(
        lambda: not DatabaseTaskWorker.objects.exists(),
        timeout=30,
        what="the orphaned children to stop and leave the registry",
    )
    for pid in children:
        assert f"Worker {prefix(pid)}" in supervisor.output()
    assert supervisor.errors().count("lost its supervisor; stopping") == 2


@pytest.mark.parametrize(
    ("enqueue", "options", "status"),
    [
        (lambda: None, ["--empty-exit-code", "3"], 3),
        (lambda: tasks.add.enqueue(1, 1), ["--empty-exit-code", "3"], 0),
        (lambda: tasks.fail.enqueue(), ["--failed-exit-code", "4"], 4),
        (
            lambda: tasks.fail.enqueue(),
            ["--failed-exit-code", "4", "--empty-exit-code", "3"],
            4,
        ),
        (lambda: tasks.add.enqueue(1, 1), ["--failed-exit-code", "4"], 0),
    ],
)
@pytest.mark.parametrize("processes", [[], ["--processes", "2"]])
def test_exit_status_of_a_run(test_database_env, enqueue, options, status, processes):
    enqueue()
    done = run_command(test_database_env, "run_database_tasks", *processes, *options)
    assert done.returncode == status, done.stderr


def test_a_one_shot_run_whose_child_died_exits_1(test_database_env):
    tasks.kill_own_process.enqueue()
    done = run_command(test_database_env, "run_database_tasks", "--processes", "2")
    assert done.returncode == 1
    assert "died (killed by SIGKILL); a one-shot run does not replace it" in done.stderr
    assert "CommandError: 1 worker process(es) died and were not replaced." in (
        done.stderr
    )
