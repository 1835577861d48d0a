"""Many tasks at once in one worker process: sync tasks in threads, async
ones on one event loop; each exactly once. Overlapping spans show they ran
together; how fast is the benchmark's business."""

import signal

import pytest
from django.tasks import task_backends

from django_database_task.engine.maintenance import rescuer
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks
from tests.factories import started_by_workers
from tests.models import Span, peak_overlap
from tests.processes import backend_options, run_django, start_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.acceptance]


def test_eight_sync_tasks_run_at_once_with_concurrency_8(test_database_env):
    for number in range(8):
        tasks.timed_sleep.enqueue(f"sync-{number}", 1)
    output = run_django(test_database_env, "run_database_tasks", "--concurrency", "8")
    assert output.endswith("Processed 8 task(s).\n")
    assert peak_overlap(Span.objects.all()) == 8
    assert Span.objects.count() == 8
    assert not DatabaseTask.objects.exclude(status="SUCCESSFUL").exists()


def test_two_hundred_async_tasks_with_concurrency_100(test_database_env):
    for number in range(200):
        tasks.async_timed_sleep.enqueue(f"async-{number}", 1)
    run_django(test_database_env, "run_database_tasks", "--concurrency", "100")
    assert Span.objects.count() == 200  # unique keys: each ran once
    assert peak_overlap(Span.objects.all()) >= 90
    assert DatabaseTask.objects.filter(status="SUCCESSFUL").count() == 200
    attempts = DatabaseTask.objects.values_list("worker_ids", flat=True)
    assert all(len(worker_ids) == 1 for worker_ids in attempts)


def test_timeouts_fail_stuck_tasks_and_the_others_go_on(settings, test_database_env):
    env = backend_options(
        settings,
        test_database_env,
        TASK_OPTIONS={
            "tests.tasks.timed_sleep": {"timeout": 1},
            "tests.tasks.async_timed_sleep": {"timeout": 1},
        },
    )
    stuck = tasks.timed_sleep.using(priority=10).enqueue("stuck-sync", 30)
    stuck_async = tasks.async_timed_sleep.using(priority=10).enqueue("stuck-async", 30)
    quick = [tasks.timed_sleep.enqueue(f"quick-{n}", 0.01) for n in range(20)]
    run_django(env, "run_database_tasks", "--concurrency", "4")
    for result in (stuck, stuck_async):
        row = DatabaseTask.objects.get(pk=result.id)
        assert row.status == "FAILED"
        assert row.errors[-1]["exception_class_path"] == (
            "django_database_task.engine.executor.TaskTimeout"
        )
    assert set(
        DatabaseTask.objects.filter(pk__in=[q.id for q in quick]).values_list(
            "status", flat=True
        )
    ) == {"SUCCESSFUL"}
    # The stuck ones never got to record their span: stopped, not abandoned.
    assert not Span.objects.filter(key__startswith="stuck").exists()


def test_shutdown_timeout_leaves_running_tasks_to_an_immediate_rescue(
    settings, test_database_env
):
    env = backend_options(
        settings,
        test_database_env,
        HEARTBEAT_INTERVAL=0.2,
        RESCUE_AFTER=30,
        TASK_DEFAULTS={"max_attempts": 2, "retry_backoff": 0.001},
    )
    long = [tasks.timed_sleep.enqueue(f"long-{n}", 30) for n in range(2)]
    worker = start_worker(
        env, "--continuous", "--concurrency", "2", "--shutdown-timeout", "0.5"
    )
    try:
        # Started, not only claimed: a worker stopped between the claim and
        # the start releases its tasks and leaves nothing running.
        wait_for(lambda: started_by_workers() == {str(r.id) for r in long}, worker)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, err
    assert "still running after the 0.5 s shutdown timeout" in err
    # Marked dead, not removed: the next heartbeat of any worker rescues its
    # tasks at once, far sooner than RESCUE_AFTER.
    [row] = DatabaseTaskWorker.objects.all()
    assert row.last_heartbeat_at.year == 2000
    rescuer.rescue(task_backends["default"])
    for result in long:
        stored = DatabaseTask.objects.get(pk=result.id)
        assert stored.status == "READY"
        assert stored.errors[-1]["exception_class_path"] == rescuer.WORKER_LOST_PATH
