"""bulk_enqueue: many calls of one task, checked first, written all or none."""

import dataclasses
import uuid
from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from django.tasks import TaskResult, task_backends
from django.tasks.exceptions import InvalidTaskBackend
from django.tasks.signals import task_enqueued
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_database_task import bulk, bulk_enqueue, process_tasks
from django_database_task.bulk_text import batches
from django_database_task.models import DatabaseTask
from django_database_task.sql import Dialect, dialect_for
from tests import tasks

pytestmark = pytest.mark.django_db

# Text that COPY's text format, SQL quoting or JSON must each escape.
AWKWARD = [
    "tab\there",
    "new\nline\r\n",
    "back\\slash \\N \\\\",
    "quotes ' \" `",
    "percent %s %% %(x)s",
    "é ü 漢字 😀",
    "\u2028",
    "",
]


@pytest.fixture
def enqueued():
    """The ids ``task_enqueued`` carries, in order, each with how many
    atomic blocks were open when it arrived."""
    seen = []

    def on_enqueued(sender, task_result, **kwargs):
        seen.append((task_result.id, len(connection.atomic_blocks)))

    task_enqueued.connect(on_enqueued)
    yield seen
    task_enqueued.disconnect(on_enqueued)


def test_every_call_becomes_a_task_and_runs():
    results = bulk_enqueue(tasks.add, [((n, n), {}) for n in range(5)])
    assert [r.status for r in results] == ["READY"] * 5
    assert DatabaseTask.objects.count() == 5
    done = {r.id: r.return_value for r in process_tasks(max_tasks=10)}
    assert done == {r.id: 2 * n for n, r in enumerate(results)}


def test_awkward_text_reaches_the_worker_unchanged():
    calls = [((text,), {"key": text, text: [text]}) for text in AWKWARD]
    results = bulk_enqueue(tasks.echo, calls)
    for result, (args, kwargs) in zip(results, calls, strict=True):
        assert result.args == list(args)
        assert result.kwargs == kwargs
    done = {r.id: r.return_value for r in process_tasks(max_tasks=20)}
    assert done == {
        r.id: {"args": list(args), "kwargs": kwargs}
        for r, (args, kwargs) in zip(results, calls, strict=True)
    }


def test_awkward_queue_names_are_stored_as_given():
    queue = "q\t\\N\\ 'x' %s é"
    results = bulk_enqueue(tasks.add.using(queue_name=queue), [((1, 2), {})] * 3)
    assert set(DatabaseTask.objects.values_list("queue_name", flat=True)) == {queue}
    assert [r.task.queue_name for r in results] == [queue] * 3


def test_one_statement_per_chunk_and_one_signal_per_task_after_commit(enqueued):
    counted = []

    def count_rows(sender, **kwargs):
        if not counted:
            counted.append(DatabaseTask.objects.count())

    task_enqueued.connect(count_rows)
    depth = len(connection.atomic_blocks)
    try:
        with CaptureQueriesContext(connection) as queries:
            results = tasks.echo.get_backend().bulk_enqueue(
                tasks.echo, [((), {"n": n}) for n in range(1200)], batch_size=500
            )
    finally:
        task_enqueued.disconnect(count_rows)
    writes = [q for q in queries if q["sql"].startswith(("INSERT", "COPY"))]
    assert len(writes) == 3
    # Each task once, in order, and only once every row is written and the
    # bulk's transaction is over.
    assert counted == [1200]
    assert enqueued == [(r.id, depth) for r in results]


def test_the_default_chunks_hold_many_rows():
    with CaptureQueriesContext(connection) as queries:
        bulk_enqueue(tasks.add, [((n, n), {}) for n in range(3000)])
    writes = [q for q in queries if q["sql"].startswith(("INSERT", "COPY"))]
    # 1,000 rows per INSERT (SQLite's cap on a statement's parameters would
    # allow 2,000), 10,000 per COPY.
    assert len(writes) == {"postgresql": 1, "mysql": 3, "sqlite": 3}[connection.vendor]
    assert DatabaseTask.objects.count() == 3000


def test_big_arguments_split_a_multi_row_insert():
    payload = "x" * 1_200_000
    with CaptureQueriesContext(connection) as queries:
        bulk_enqueue(tasks.echo, [((payload,), {})] * 3)
    writes = [q for q in queries if q["sql"].startswith(("INSERT", "COPY"))]
    # No two rows fit in the 2,000,000 characters an INSERT may carry; one
    # COPY streams them all.
    assert len(writes) == (1 if connection.vendor == "postgresql" else 3)
    assert [len(row.args[0]) for row in DatabaseTask.objects.all()] == [1_200_000] * 3


def test_the_plain_multi_row_insert_works_on_every_database():
    # PostgreSQL falls back to it under psycopg 2, which has no copy().
    backend = tasks.echo.get_backend()
    now = timezone.now()
    columns, constants = bulk.shared_columns(backend, tasks.echo, now, connection)
    calls = bulk.checked_calls([((text,), {"k": text}) for text in AWKWARD])
    ids = bulk.random_ids(len(calls))
    stored = (
        ids
        if connection.features.has_native_uuid_field
        else [task_id.replace("-", "") for task_id in ids]
    )
    rows = [
        (stored_id, bulk._dumps(args), bulk._dumps(kwargs))
        for stored_id, (args, kwargs) in zip(stored, calls, strict=True)
    ]
    Dialect.insert_rows(
        dialect_for(connection), connection, bulk.PER_ROW + columns, rows, constants, 3
    )
    done = {r.id: r.return_value for r in process_tasks(max_tasks=20)}
    assert done == {
        task_id: {"args": args, "kwargs": kwargs}
        for task_id, (args, kwargs) in zip(ids, calls, strict=True)
    }


def test_batches_are_cut_by_rows_and_by_characters():
    rows = [("a" * 10,)] * 5
    assert [len(batch) for batch in batches(rows, 2, 0)] == [2, 2, 1]
    assert [len(batch) for batch in batches(rows, 5, 0)] == [5]
    huge = [("x" * 1_500_000,), ("y",), ("z" * 1_500_000,)]
    assert [len(batch) for batch in batches(huge, 10, 0)] == [2, 1]
    assert [len(batch) for batch in batches(huge[:1], 10, 3_000_000)] == [1]
    assert list(batches([], 10, 0)) == []


def _fields(result: TaskResult) -> dict:
    """Every field of a TaskResult, ``_return_value`` included, with types."""
    names = [field.name for field in dataclasses.fields(TaskResult)]
    return {
        name: (type(getattr(result, name)), getattr(result, name)) for name in names
    }


def _row(task_id: str) -> dict:
    row = DatabaseTask.objects.values().get(pk=task_id)
    return {name: value for name, value in row.items() if name != "id"}


@pytest.mark.parametrize(
    "task",
    [
        tasks.echo,
        tasks.echo.using(priority=7, queue_name="mail"),
        tasks.echo.using(run_after=timezone.now() + timedelta(hours=1)),
    ],
    ids=["plain", "priority and queue", "run_after"],
)
def test_results_and_rows_are_those_enqueue_gives(task):
    args, kwargs = ((1, 2.5), "é".encode(), None, [True, {"k": (3,)}]), {"x": "y"}
    single = task.enqueue(*args, **kwargs)
    [first, second] = bulk_enqueue(task, [(args, kwargs), (args, kwargs)])
    for result in (first, second):
        expected = _fields(single) | {
            "id": (str, result.id),
            "enqueued_at": (datetime, result.enqueued_at),
        }
        assert _fields(result) == expected
        assert result._return_value is None
        assert uuid.UUID(result.id).version == 4
        assert result.task is task
        stored = _row(result.id)
        assert stored["enqueued_at"] == result.enqueued_at
        assert stored == _row(single.id) | {
            "enqueued_at": result.enqueued_at,
            "due_at": task.run_after or result.enqueued_at,
        }
        # get_result() reads the row back as the same result.
        assert _fields(task_backends["default"].get_result(result.id)) == _fields(
            result
        )
    # Each result has lists of its own.
    assert first.args is not second.args
    assert first.errors is not second.errors
    assert first.worker_ids is not second.worker_ids


@override_settings(
    TASKS={
        "default": {
            "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
            "OPTIONS": {
                "TASK_DEFAULTS": {"max_attempts": 2},
                "TASK_OPTIONS": {
                    "tests.tasks.add": {"max_attempts": 4, "retry_backoff": 0.5}
                },
            },
        }
    }
)
def test_retry_options_are_resolved_as_for_enqueue():
    single = tasks.add.enqueue(1, 2)
    bulk_enqueue(tasks.add, [((1, 2), {})])
    options = {
        tuple(row)
        for row in DatabaseTask.objects.values_list(
            "max_attempts", "retry_backoff", "retry_backoff_max"
        )
    }
    assert options == {(4, 0.5, 3600.0)}
    assert DatabaseTask.objects.get(pk=single.id).max_attempts == 4


@pytest.mark.django_db(databases=["default", "tasks"])
def test_the_rows_go_to_the_backends_database():
    with override_settings(
        TASKS={
            "default": {
                "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
                "OPTIONS": {"DATABASE": "tasks"},
            }
        }
    ):
        results = bulk_enqueue(tasks.add, [((1, 2), {})] * 2)
        stored = DatabaseTask.objects.using("tasks").values_list("pk", flat=True)
        assert {str(pk) for pk in stored} == {r.id for r in results}
        assert not DatabaseTask.objects.using("default").exists()


def test_no_calls_write_nothing():
    with CaptureQueriesContext(connection) as queries:
        assert bulk_enqueue(tasks.add, []) == []
    assert not [q for q in queries if q["sql"].startswith(("INSERT", "COPY"))]


def test_calls_may_be_any_iterable():
    results = bulk_enqueue(tasks.add, (((n, n), {}) for n in range(3)))
    assert [r.args for r in results] == [[0, 0], [1, 1], [2, 2]]


def test_ids_are_distinct_version_4_uuids():
    ids = bulk.random_ids(5000)
    assert len(set(ids)) == 5000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    ("calls", "error", "message"),
    [
        (
            [((1, 2), {}), ((1, datetime(2026, 1, 1)), {})],
            TypeError,
            r"^calls\[1\]: Unsupported type: .* in args\[1\]",
        ),
        (
            [((1, 2), {}), ((), {"a": 1, "b": {1, 2}})],
            TypeError,
            r"^calls\[1\]: Unsupported type: .* in kwargs\['b'\]",
        ),
        ([((), {1: "a"})], TypeError, r"^calls\[0\]: kwargs has the key 1"),
        (
            [((1, 2), {}), (1, 2, 3)],
            TypeError,
            r"calls\[1\] must be an \(args, kwargs\) pair",
        ),
        ([((1, 2), {}), None], TypeError, r"calls\[1\] must be an \(args, kwargs\)"),
        ([("ab", {})], TypeError, r"calls\[0\]: args must be a list or a tuple"),
        ([((1,), [])], TypeError, r"calls\[0\]: kwargs must be a dict"),
        ([((float("nan"), 1), {})], ValueError, r"calls\[0\]: .*JSON cannot represent"),
        ([((b"\xff", 1), {})], TypeError, r"^calls\[0\]: Unsupported value: "),
        (None, TypeError, r"calls must be an iterable of \(args, kwargs\) pairs"),
        ("ab", TypeError, r"calls must be an iterable of \(args, kwargs\) pairs"),
    ],
)
def test_a_bad_call_is_a_clear_error_and_nothing_is_written(
    calls, error, message, enqueued
):
    with pytest.raises(error, match=message):
        bulk_enqueue(tasks.add, calls)
    assert not DatabaseTask.objects.exists()
    assert enqueued == []


def test_a_bad_call_in_the_middle_of_many_leaves_nothing_written(enqueued):
    calls = [((n, n), {}) for n in range(3000)]
    calls[2500] = ((1, object()), {})
    with pytest.raises(TypeError, match=r"^calls\[2500\]: Unsupported type"):
        tasks.add.get_backend().bulk_enqueue(tasks.add, calls, batch_size=1000)
    assert not DatabaseTask.objects.exists()
    assert enqueued == []


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "10"])
def test_a_bad_batch_size_is_refused(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        tasks.add.get_backend().bulk_enqueue(
            tasks.add, [((1, 1), {})], batch_size=batch_size
        )


def test_a_row_the_database_refuses_in_a_later_chunk_leaves_nothing(
    monkeypatch, enqueued
):
    # The third chunk repeats an id of the first: the database refuses it
    # after two chunks went in, and the whole bulk is rolled back.
    make_ids = bulk.random_ids

    def repeating_ids(count):
        ids = make_ids(count)
        ids[-1] = ids[0]
        return ids

    monkeypatch.setattr(bulk, "random_ids", repeating_ids)
    with pytest.raises(Exception) as failure:
        tasks.add.get_backend().bulk_enqueue(
            tasks.add, [((n, n), {}) for n in range(5)], batch_size=2
        )
    assert type(failure.value).__module__ == "django.db.utils"
    assert not DatabaseTask.objects.exists()
    assert enqueued == []


def test_inside_a_transaction_that_rolls_back_nothing_is_left():
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


on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="NOTIFY is PostgreSQL's"
)


@pytest.fixture
def heard():
    """What a LISTEN connection of the test's own hears on the default
    backend's channel within a moment."""
    import psycopg

    listening = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    listening.execute('LISTEN "ddt_default"')
    yield lambda: [n.payload for n in listening.notifies(timeout=0.3)]
    listening.close()


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_one_notify_per_bulk_however_many_chunks(heard):
    tasks.add.get_backend().bulk_enqueue(
        tasks.add, [((n, n), {}) for n in range(7)], batch_size=2
    )
    assert heard() == ["default"]
    bulk_enqueue(tasks.add, [])
    assert heard() == []


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_failed_bulk_notifies_no_one(heard, monkeypatch):
    make_ids = bulk.random_ids
    monkeypatch.setattr(bulk, "random_ids", lambda count: make_ids(1) * count)
    with pytest.raises(Exception, match="duplicate key"):
        bulk_enqueue(tasks.add, [((1, 1), {})] * 2)
    assert heard() == []
