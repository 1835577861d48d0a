"""Real worker processes: graceful shutdown and exactly-once under concurrency."""

import signal

import pytest
from django.tasks import TaskResultStatus

from django_database_task.models import DatabaseTask
from tests import tasks
from tests.factories import started_by_workers, status_of
from tests.models import Execution
from tests.processes import start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigterm_lets_the_running_task_finish_and_starts_nothing_new(
    test_database_env,
):
    running = tasks.sleep_then_record.enqueue("slow", 2)
    waiting = tasks.record.using(priority=-1).enqueue("next")
    worker = start_worker(test_database_env, "--continuous", "--interval", "1")
    try:
        wait_for(lambda: str(running.id) in started_by_workers(), worker)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, err
    assert status_of(running) == TaskResultStatus.SUCCESSFUL
    assert status_of(waiting) == TaskResultStatus.READY
    assert Execution.objects.filter(key="slow").exists()
    assert "Stopped on signal." in out


@pytest.mark.parametrize("concurrency", ["1", "2"])
def test_a_task_leaving_its_connection_out_of_autocommit_costs_no_later_outcome(
    test_database_env, concurrency
):
    """The next statements on that connection would run in a transaction
    nobody commits (or, once the database is gone, wedge every atomic block
    the worker opens): the worker closes such a connection after the task."""
    broken = tasks.leave_autocommit_off.using(priority=1).enqueue("broken")
    later = [tasks.record.enqueue(f"later-{n}") for n in range(20)]
    worker = start_worker(test_database_env, "--concurrency", concurrency)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert status_of(broken) == TaskResultStatus.SUCCESSFUL
    assert [status_of(result) for result in later] == [TaskResultStatus.SUCCESSFUL] * 20
    assert Execution.objects.count() == 21


def test_an_async_task_leaving_its_connection_broken_costs_no_later_outcome(
    test_database_env,
):
    """Async tasks' queries run in sync_to_async's one thread, whichever
    task makes them: after a failed task, its connection there is checked
    (a task running beside it meanwhile may still write on it)."""
    worker = start_worker(
        test_database_env, "--continuous", "--interval", "0.1", "--concurrency", "2"
    )
    try:
        broken = tasks.async_leave_autocommit_off.enqueue("broken")
        wait_for(lambda: status_of(broken) == TaskResultStatus.FAILED, worker)
        later = [tasks.async_record.enqueue(f"later-{n}") for n in range(20)]
        wait_for(
            lambda: all(
                status_of(result) == TaskResultStatus.SUCCESSFUL for result in later
            ),
            worker,
        )
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, err
    assert Execution.objects.count() == 21


def test_an_idle_worker_stops_at_once_on_sigterm(test_database_env):
    worker = start_worker(test_database_env, "--continuous", "--interval", "600")
    try:
        assert worker.stdout.readline().startswith("Worker ")
        worker.send_signal(signal.SIGINT)
        out, err = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, err
    assert out.endswith("Processed 0 task(s).\n")


def test_a_second_signal_exits_at_once(test_database_env):
    running = tasks.sleep_then_record.enqueue("very-slow", 60)
    worker = start_worker(test_database_env, "--continuous")
    try:
        wait_for(lambda: str(running.id) in started_by_workers(), worker)
        assert worker.stdout.readline().startswith("Worker ")
        worker.send_signal(signal.SIGTERM)
        assert worker.stdout.readline().startswith("Stopping after the running task")
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == -signal.SIGTERM
    assert status_of(running) == TaskResultStatus.RUNNING


def test_four_workers_run_each_of_2000_tasks_exactly_once(test_database_env):
    for number in range(2000):
        tasks.record.enqueue(f"task-{number}")
    workers = [start_worker(test_database_env) for _ in range(4)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    assert Execution.objects.count() == 2000
    assert not Execution.objects.filter(duplicates__gt=0).exists()
    assert DatabaseTask.objects.filter(status="SUCCESSFUL").count() == 2000
    assert not DatabaseTask.objects.exclude(status="SUCCESSFUL").exists()
    attempts = DatabaseTask.objects.values_list("worker_ids", flat=True)
    assert all(len(worker_ids) == 1 for worker_ids in attempts)
    processed = [int(out.rsplit("Processed ", 1)[1].split()[0]) for out, _ in outputs]
    assert sum(processed) == 2000
