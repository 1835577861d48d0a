"""The producer: claims sized to free slots plus a prefetch learnt from how
long tasks take, a look before claiming when idle, and claimed tasks a
stopping worker never started given back as they were."""

import threading

import pytest
from django.db import connection
from django.tasks import task, task_backends
from django.test.utils import CaptureQueriesContext

from django_database_task.engine.producer import MAX_CLAIM, PREFETCH_WINDOW, Producer
from django_database_task.engine.transient import Outage
from django_database_task.engine.waker import Waker
from django_database_task.engine.worker import Worker
from django_database_task.models import DatabaseTask
from tests import tasks

pytestmark = pytest.mark.django_db

RUNNING_WORKER: list[Worker] = []


@task(priority=5)
def stop_the_worker():
    RUNNING_WORKER[0].stop()


def producer(worker_id="w") -> Producer:
    backend = task_backends["default"]
    outage = Outage(worker_id, Waker(), enabled=False)
    return Producer(backend, worker_id, (), outage, give_up=lambda: False)


def test_without_a_measure_there_is_no_prefetch():
    assert producer().prefetch(concurrency=4) == 0
    assert producer().wanted(free=4, concurrency=4, left=100) == 4


def test_short_tasks_earn_a_prefetch_of_a_window_of_work_and_slow_ones_none():
    fast, slow = producer(), producer()
    fast.observe(0.001)
    slow.observe(0.5)
    assert fast.prefetch(concurrency=1) == int(PREFETCH_WINDOW / 0.001)
    assert fast.prefetch(concurrency=8) == MAX_CLAIM
    assert slow.prefetch(concurrency=8) == 0
    assert fast.wanted(free=1, concurrency=1, left=1000) == 1 + int(
        PREFETCH_WINDOW / 0.001
    )
    assert fast.wanted(free=1, concurrency=1, left=3) == 3


def test_no_claim_while_the_held_tasks_fill_the_slots_and_half_the_prefetch():
    fast = producer()
    fast.observe(0.001)  # A prefetch of 50.
    fast.claimed.extend([object()] * 30)
    assert fast.wanted(free=1, concurrency=1, left=1000) == 0
    fast.claimed.clear()
    fast.claimed.extend([object()] * 20)
    assert fast.wanted(free=1, concurrency=1, left=1000) == 31
    # What max_tasks leaves counts the held tasks already.
    assert fast.wanted(free=1, concurrency=1, left=4) == 4


def test_released_tasks_are_ready_again_as_if_never_claimed():
    retried = tasks.add.enqueue(1, 1)
    fresh = tasks.add.enqueue(2, 2)
    DatabaseTask.objects.filter(pk=retried.id).update(worker_ids=["earlier"])
    mine = producer()
    assert mine.claim(5, keep=list) == 2
    mine.release()
    assert not mine.claimed
    rows = {str(row.pk): row for row in DatabaseTask.objects.all()}
    assert {row.status for row in rows.values()} == {"READY"}
    assert {row.worker_id for row in rows.values()} == {""}
    assert rows[retried.id].worker_ids == ["earlier"]
    assert rows[fresh.id].worker_ids == []
    assert rows[fresh.id].started_at is None
    assert rows[fresh.id].last_attempted_at is None


def test_release_leaves_a_task_that_changed_hands():
    tasks.add.enqueue(1, 1)
    mine = producer()
    mine.claim(1, keep=list)
    DatabaseTask.objects.update(worker_id="rescuer")
    mine.release()
    assert DatabaseTask.objects.get().status == "RUNNING"


def test_a_stopping_worker_gives_back_the_prefetched_tasks_it_never_started():
    tasks.urgent.enqueue()  # Runs first, alone: it teaches the prefetch.
    stop = stop_the_worker.enqueue()
    for number in range(9):
        tasks.add.enqueue(number, 1)
    worker = Worker(task_backends["default"], continuous=True)
    RUNNING_WORKER[:] = [worker]
    assert worker.run() == 2
    assert DatabaseTask.objects.get(pk=stop.id).status == "SUCCESSFUL"
    left = DatabaseTask.objects.filter(status="READY")
    assert left.count() == 9
    assert {len(row.worker_ids) for row in left} == {0}


def test_an_idle_worker_looks_before_it_claims():
    mine = producer()
    assert mine.claim(1, keep=list) == 0
    assert mine.found_nothing
    with CaptureQueriesContext(connection) as queries:
        assert 4.5 < mine.seconds_until_due(5.0) <= 5.0
    assert len(queries) == 1
    assert queries[0]["sql"].lstrip().upper().startswith("SELECT")
    tasks.add.enqueue(1, 1)
    assert mine.seconds_until_due(5.0) == 0


# In autocommit, as a worker runs: it closes its connection while idle.
@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_polls_with_one_read_and_claims_once_a_task_is_due():
    worker = Worker(task_backends["default"], continuous=True, interval=0.05)
    timer = threading.Timer(0.6, worker.stop)
    timer.start()
    with CaptureQueriesContext(connection) as queries:
        worker.run()
    statements = [query["sql"].lstrip().upper() for query in queries]
    claims = [
        sql
        for sql in statements
        if "SKIP LOCKED" in sql or "DJANGO_DATABASE_TASK SET STATUS = 'RUNNING'" in sql
    ]
    looks = [sql for sql in statements if sql.startswith("SELECT MIN(DUE_AT)")]
    # At the start, and on PostgreSQL once more as LISTEN begins (a
    # notification may have been missed before).
    assert 1 <= len(claims) <= 2
    assert len(looks) >= 5
