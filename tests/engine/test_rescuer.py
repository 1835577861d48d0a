"""The rescuer frees the tasks of dead workers, and only theirs."""

from datetime import timedelta

import pytest
from django.tasks import task_backends
from django.test import override_settings
from django.utils import timezone

from django_database_task.engine import registry
from django_database_task.engine.maintenance import rescuer
from django_database_task.models import DatabaseTaskWorker
from tests.factories import make_task, stored

pytestmark = pytest.mark.django_db

OPTIONS = {"HEARTBEAT_INTERVAL": 5, "RESCUE_AFTER": 60}
TASKS = {
    "default": {
        "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
        "OPTIONS": OPTIONS,
    },
    "other": {
        "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
        "OPTIONS": OPTIONS,
    },
}


@pytest.fixture(autouse=True)
def backends():
    with override_settings(TASKS=TASKS):
        yield


def worker(name: str, silent_for: float, backend: str = "default") -> str:
    registry.register(task_backends[backend], name)
    DatabaseTaskWorker.objects.filter(pk=name).update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=silent_for)
    )
    return name


def running(holder: str, attempts: int = 1, started_ago: float = 1, **fields):
    return make_task(
        status="RUNNING",
        worker_id=holder,
        worker_ids=[holder] * attempts,
        last_attempted_at=timezone.now() - timedelta(seconds=started_ago),
        **fields,
    )


def test_a_dead_workers_task_with_attempts_left_is_ready_again_after_its_backoff():
    task = running(worker("dead", silent_for=61), max_attempts=3, retry_backoff=10)
    before = timezone.now()
    assert rescuer.rescue(task_backends["default"]) == 1
    rescued = stored(task)
    assert (rescued.status, rescued.worker_id) == ("READY", "")
    assert before <= rescued.due_at <= timezone.now() + timedelta(seconds=10)
    assert rescued.errors[-1]["exception_class_path"] == rescuer.WORKER_LOST_PATH
    assert "Worker dead stopped heartbeating" in rescued.errors[-1]["traceback"]


def test_a_dead_workers_task_that_used_its_attempts_fails():
    task = running(worker("dead", silent_for=600), attempts=2, max_attempts=2)
    assert rescuer.rescue(task_backends["default"]) == 1
    assert stored(task).status == "FAILED" and stored(task).finished_at is not None


def test_a_live_workers_task_is_never_touched_however_long_it_runs():
    task = running(worker("alive", silent_for=4), started_ago=86_400)
    assert rescuer.rescue(task_backends["default"]) == 0
    assert stored(task).status == "RUNNING"


def test_a_holder_missing_from_the_registry_counts_from_the_attempts_start():
    old = running("vanished", started_ago=61, max_attempts=2)
    young = running("vanished", started_ago=30)
    # Held before the registry existed: only requeue_stale_database_tasks.
    legacy = running("", started_ago=86_400)
    assert rescuer.rescue(task_backends["default"]) == 1
    assert [stored(t).status for t in (old, young, legacy)] == [
        "READY",
        "RUNNING",
        "RUNNING",
    ]


def test_rescue_is_per_backend_and_batch_limited():
    dead = worker("dead", silent_for=61)
    mine = [running(dead, max_attempts=2) for _ in range(3)]
    theirs = running(dead, backend_name="other", max_attempts=2)
    assert rescuer.rescue(task_backends["default"], batch_size=2) == 2
    assert rescuer.rescue(task_backends["default"], batch_size=2) == 1
    assert {stored(t).status for t in mine} == {"READY"}
    assert stored(theirs).status == "RUNNING"


def test_a_task_that_changed_hands_meanwhile_is_left_alone():
    task = running(worker("dead", silent_for=61), max_attempts=2)
    assert (
        rescuer.requeue_lost(
            task_backends["default"],
            pk=task.pk,
            worker_id="someone-else",
            retry_at=None,
            reason="",
            now=timezone.now(),
        )
        == 0
    )
    assert stored(task).status == "RUNNING"


def test_prune_deletes_dead_workers_once_they_hold_nothing():
    dead = worker("dead", silent_for=61)
    worker("alive", silent_for=1)
    task = running(dead, max_attempts=1)
    assert rescuer.prune(task_backends["default"]) == 0
    rescuer.rescue(task_backends["default"])
    assert stored(task).status == "FAILED"
    assert rescuer.prune(task_backends["default"]) == 1
    assert list(DatabaseTaskWorker.objects.values_list("pk", flat=True)) == ["alive"]


def test_a_dead_workers_task_it_never_started_is_ready_as_if_never_claimed():
    dead = worker("dead", silent_for=61)
    DatabaseTaskWorker.objects.filter(pk=dead).update(started_task_ids=[])
    started = running(dead, started_at=timezone.now())
    retried = make_task(
        status="RUNNING",
        worker_id=dead,
        worker_ids=["earlier", dead],
        started_at=timezone.now() - timedelta(hours=1),
        last_attempted_at=timezone.now(),
        errors=[{"exception_class_path": "builtins.ValueError", "traceback": "x"}],
    )
    ahead = running(dead, started_at=timezone.now())
    registry.record_started(task_backends["default"], dead, [started.pk])

    assert rescuer.rescue(task_backends["default"]) == 3

    lost = stored(started)
    assert lost.status == "FAILED"
    assert lost.errors[-1]["exception_class_path"] == rescuer.WORKER_LOST_PATH
    never_started = stored(ahead)
    assert (never_started.status, never_started.worker_id) == ("READY", "")
    assert never_started.worker_ids == []
    assert never_started.started_at is None
    assert never_started.last_attempted_at is None
    assert never_started.errors == []
    assert never_started.due_at == ahead.due_at
    earlier = stored(retried)
    assert (earlier.status, earlier.worker_ids) == ("READY", ["earlier"])
    assert earlier.started_at == retried.started_at
    assert earlier.errors == retried.errors


def test_every_task_of_a_dead_worker_that_kept_no_started_list_counts():
    dead = worker("dead", silent_for=61)
    assert DatabaseTaskWorker.objects.get(pk=dead).started_task_ids is None
    tasks = [running(dead) for _ in range(2)]
    assert rescuer.rescue(task_backends["default"]) == 2
    assert {stored(task).status for task in tasks} == {"FAILED"}


def test_a_worker_registers_with_an_empty_started_list_when_it_keeps_one():
    registry.register(task_backends["default"], "keeper", keeps_started=True)
    assert DatabaseTaskWorker.objects.get(pk="keeper").started_task_ids == []
