"""bulk_enqueue: many calls of one task, checked first, written all or none."""

from datetime import datetime

import pytest
from django.db import connection
from django.tasks.exceptions import InvalidTaskBackend
from django.tasks.signals import task_enqueued
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_database_task import bulk_enqueue, process_tasks
from django_database_task.models import DatabaseTask
from tests import tasks

pytestmark = pytest.mark.django_db


def test_every_call_becomes_a_task_and_runs():
    results = bulk_enqueue(tasks.add, [((n, n), {}) for n in range(5)])
    assert [r.status for r in results] == ["READY"] * 5
    assert DatabaseTask.objects.count() == 5
    done = {r.id: r.return_value for r in process_tasks(max_tasks=10)}
    assert done == {r.id: 2 * n for n, r in enumerate(results)}


def test_one_insert_per_chunk_and_one_signal_per_task():
    seen = []

    def on_enqueued(sender, task_result, **kwargs):
        seen.append(task_result.id)

    task_enqueued.connect(on_enqueued)
    try:
        with CaptureQueriesContext(connection) as queries:
            results = tasks.echo.get_backend().bulk_enqueue(
                tasks.echo, [((), {"n": n}) for n in range(1200)], batch_size=500
            )
    finally:
        task_enqueued.disconnect(on_enqueued)
    inserts = [q for q in queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3
    assert seen == [r.id for r in results]
    assert DatabaseTask.objects.count() == 1200


@pytest.mark.parametrize(
    ("calls", "error", "message"),
    [
        (
            [((1, 2), {}), ((1, datetime(2026, 1, 1)), {})],
            TypeError,
            r"^calls\[1\]: Unsupported type",
        ),
        (
            [((1, 2), {}), (1, 2, 3)],
            TypeError,
            r"calls\[1\] must be an \(args, kwargs\) pair",
        ),
        ([("ab", {})], TypeError, r"calls\[0\]: args must be a list or a tuple"),
        ([((1,), [])], TypeError, r"calls\[0\]: kwargs must be a dict"),
        ([((float("nan"), 1), {})], ValueError, r"calls\[0\]: .*JSON cannot represent"),
    ],
)
def test_a_bad_call_is_a_clear_error_and_nothing_is_written(calls, error, message):
    with pytest.raises(error, match=message):
        bulk_enqueue(tasks.add, calls)
    assert not DatabaseTask.objects.exists()


def test_inside_a_transaction_that_rolls_back_nothing_is_left():
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        bulk_enqueue(tasks.add, [((1, 1), {})] * 3)
        raise RuntimeError
    assert not DatabaseTask.objects.exists()


@override_settings(
    TASKS={"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
)
def test_a_backend_that_stores_nothing_is_refused():
    with pytest.raises(InvalidTaskBackend, match="needs a database backend"):
        bulk_enqueue(tasks.add, [((1, 1), {})])
