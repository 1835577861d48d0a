"""The worker: registered while it runs, holding what it claims, heartbeating
from its own thread, and safe to stop at any time."""

import os
import threading
import time

import pytest
from django.tasks import task_backends
from django.tasks.signals import task_started
from django.test import override_settings

from django_database_task.engine import registry
from django_database_task.engine.heartbeat import Heartbeat
from django_database_task.engine.transitions import release_held
from django_database_task.engine.waker import Waker
from django_database_task.engine.worker import Worker
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks
from tests.factories import make_task

BACKEND = "django_database_task.backends.DatabaseTaskBackend"


@pytest.mark.django_db
def test_a_worker_is_registered_while_it_runs_and_holds_what_it_runs():
    seen = []

    def on_started(sender, task_result, **kwargs):
        holder = DatabaseTask.objects.get(pk=task_result.id).worker_id
        seen.append((holder, list(DatabaseTaskWorker.objects.values_list("pk"))))

    tasks.add.enqueue(1, 2)
    worker = Worker(task_backends["default"])
    task_started.connect(on_started)
    try:
        assert worker.run() == 1
    finally:
        task_started.disconnect(on_started)
    assert seen == [(worker.worker_id, [(worker.worker_id,)])]
    assert not DatabaseTaskWorker.objects.exists()
    assert DatabaseTask.objects.get().worker_id == ""


@pytest.mark.django_db
def test_stop_is_safe_after_the_run_is_over():
    worker = Worker(task_backends["default"])
    worker.run()
    worker.stop()  # Wrote to a closed pipe before the waker lived on.
    assert worker.stopping


def test_the_waker_also_watches_other_descriptors():
    waker = Waker()
    read, write = os.pipe()
    try:
        assert waker.wait(0.01, watch=[read]) == []
        assert not waker.woken  # It timed out.
        os.write(write, b"x")
        assert waker.wait(5, watch=[read]) == [read]
        assert not waker.woken
        waker.wake()
        started = time.monotonic()
        assert waker.wait(5) == []
        assert waker.woken
        assert time.monotonic() - started < 1
    finally:
        os.close(read)
        os.close(write)


@pytest.mark.django_db(transaction=True)
@override_settings(
    TASKS={
        "default": {
            "BACKEND": BACKEND,
            "OPTIONS": {"HEARTBEAT_INTERVAL": 0.05, "RESCUE_AFTER": 1},
        }
    }
)
def test_the_heartbeat_thread_keeps_the_row_fresh_and_rejoins_when_pruned():
    backend = task_backends["default"]
    registry.register(backend, "w")
    first = DatabaseTaskWorker.objects.get().last_heartbeat_at
    heartbeat = Heartbeat(backend, "w")
    heartbeat.start()
    try:
        deadline = time.monotonic() + 10
        while DatabaseTaskWorker.objects.get().last_heartbeat_at == first:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.02)
        DatabaseTaskWorker.objects.all().delete()
        while not DatabaseTaskWorker.objects.exists():
            assert time.monotonic() < deadline, "did not register again"
            time.sleep(0.02)
    finally:
        heartbeat.stop()


@pytest.mark.django_db
def test_release_held_frees_what_a_worker_holds_but_does_not_run():
    lost = make_task(status="RUNNING", worker_id="w", worker_ids=["w"])
    running = make_task(status="RUNNING", worker_id="w", worker_ids=["w"])
    elsewhere = make_task(status="RUNNING", worker_id="v", worker_ids=["v"])
    assert release_held("default", "w", keep=[running.pk]) == 1
    statuses = [
        DatabaseTask.objects.get(pk=t.pk).status for t in (lost, running, elsewhere)
    ]
    assert statuses == ["READY", "RUNNING", "RUNNING"]
    # The lost claim never ran the task: it is not an attempt.
    assert DatabaseTask.objects.get(pk=lost.pk).worker_ids == []


@pytest.mark.django_db(transaction=True)
def test_registering_twice_is_being_registered():
    """An INSERT that committed while its answer was lost is retried: the
    retry finds the row there and counts as a heartbeat."""
    backend = task_backends["default"]
    registry.register(backend, "w")
    registry.register(backend, "w")
    assert list(DatabaseTaskWorker.objects.values_list("pk", flat=True)) == ["w"]


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_run_ends_its_slot_threads():
    for number in range(6):
        tasks.add.enqueue(number, 1)
    worker = Worker(task_backends["default"], concurrency=4)
    assert worker.run() == 6
    deadline = time.monotonic() + 10
    while any(t.name == "task slot" and t.is_alive() for t in threading.enumerate()):
        assert time.monotonic() < deadline, "slot threads still running"
        time.sleep(0.02)
