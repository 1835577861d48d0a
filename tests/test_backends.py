"""DatabaseTaskBackend: enqueue, validation and results."""

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.tasks import TaskResultStatus, default_task_backend, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.test import override_settings
from django.utils import timezone

from django_database_task.backends import DatabaseTaskBackend
from django_database_task.models import DatabaseTask
from tests import tasks

pytestmark = pytest.mark.django_db


def test_backend_declares_every_capability():
    assert isinstance(task_backends["default"], DatabaseTaskBackend)
    assert DatabaseTaskBackend.supports_defer
    assert DatabaseTaskBackend.supports_async_task
    assert DatabaseTaskBackend.supports_get_result
    assert DatabaseTaskBackend.supports_priority


def test_enqueue_inserts_one_ready_row_and_returns_its_result():
    result = tasks.add.enqueue(1, b=2)

    assert result.status == TaskResultStatus.READY
    assert result.args == [1]
    assert result.kwargs == {"b": 2}
    assert result.backend == "default"
    assert result.enqueued_at is not None
    row = DatabaseTask.objects.get()
    assert str(row.id) == result.id
    assert row.task_path == "tests.tasks.add"
    assert row.queue_name == "default"
    assert row.status == "READY"
    assert row.due_at == row.enqueued_at


def test_enqueue_sends_task_enqueued():
    received = []

    def receiver(sender, task_result, **kwargs):
        received.append((sender, task_result.id))

    task_enqueued.connect(receiver)
    try:
        result = tasks.add.enqueue(1, 2)
    finally:
        task_enqueued.disconnect(receiver)
    assert received == [(DatabaseTaskBackend, result.id)]


def test_tuples_and_utf8_bytes_are_stored_as_json():
    result = tasks.echo.enqueue((1, 2), "é".encode(), nested={"t": (3,)})
    assert result.args == [[1, 2], "é"]
    row = DatabaseTask.objects.get()
    assert row.args == [[1, 2], "é"]
    assert row.kwargs == {"nested": {"t": [3]}}


@pytest.mark.parametrize(
    ("value", "type_name", "fix"),
    [
        (datetime(2026, 1, 1), "datetime.datetime", "isoformat()"),
        (date(2026, 1, 1), "datetime.date", "isoformat()"),
        (time(12, 0), "datetime.time", "isoformat()"),
        (uuid.uuid4(), "uuid.UUID", "str(value)"),
        (Decimal("1.5"), "decimal.Decimal", "float or a string"),
        ({1, 2}, "set", "list"),
        (object(), "object", "serialise it"),
    ],
)
def test_unsupported_argument_types_raise_type_error_naming_place_and_fix(
    value, type_name, fix
):
    with pytest.raises(TypeError) as positional:
        tasks.echo.enqueue(1, value)
    # Django's own wording first, as its backends raise it, then where and how.
    assert str(positional.value).startswith(f"Unsupported type: {type(value)} in ")
    assert "args[1]" in str(positional.value)
    assert type_name in str(positional.value)
    assert fix in str(positional.value)

    with pytest.raises(TypeError) as keyword:
        tasks.echo.enqueue(when=value)
    assert "kwargs['when']" in str(keyword.value)

    with pytest.raises(TypeError) as nested:
        tasks.echo.enqueue(data={"items": [0, value]})
    assert "kwargs['data']['items'][1]" in str(nested.value)
    assert not DatabaseTask.objects.exists()


def test_non_utf8_bytes_raise_type_error():
    with pytest.raises(
        TypeError,
        match=r"^Unsupported value: <class 'bytes'> in args\[0\]: bytes that are "
        "not valid UTF-8",
    ):
        tasks.echo.enqueue(b"\xff\xfe")
    assert not DatabaseTask.objects.exists()


def test_non_string_dict_keys_raise_type_error():
    with pytest.raises(TypeError, match=r"kwargs\['data'\] has the key 1"):
        tasks.echo.enqueue(data={1: "one"})


def test_nan_raises_value_error():
    with pytest.raises(ValueError, match="JSON cannot represent"):
        tasks.echo.enqueue(float("nan"))


def test_the_spec_example_of_a_bad_argument():
    with pytest.raises(TypeError):
        tasks.echo.enqueue(123, datetime.now())
    tasks.echo.enqueue(123, datetime.now().isoformat())
    assert DatabaseTask.objects.count() == 1


@pytest.mark.parametrize("priority", [-101, 101, 1.5])
def test_priority_outside_range_is_invalid(priority):
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        tasks.add.using(priority=priority)


@override_settings(
    TASKS={
        "default": {
            "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
            "QUEUES": ["default", "emails"],
        }
    }
)
def test_queue_not_in_queues_is_invalid():
    with pytest.raises(InvalidTask, match="Queue 'reports' is not valid"):
        tasks.add.using(queue_name="reports").enqueue(1, 2)
    tasks.add.using(queue_name="emails").enqueue(1, 2)
    assert DatabaseTask.objects.get().queue_name == "emails"


def test_naive_run_after_is_invalid_with_use_tz():
    with pytest.raises(InvalidTask, match="aware datetime"):
        tasks.add.using(run_after=datetime(2030, 1, 1))


def test_run_after_is_stored_and_sets_due_time():
    later = timezone.now() + timedelta(hours=1)
    result = tasks.add.using(run_after=later).enqueue(1, 2)
    row = DatabaseTask.objects.get()
    assert row.run_after == later
    assert row.due_at == later
    assert result.task.run_after == later


def test_task_not_importable_by_its_path_is_refused():
    from django.tasks import task

    def local():
        pass

    local.__module__ = "tests.tasks"
    local.__qualname__ = "missing_function"
    with pytest.raises(InvalidTask, match="cannot be imported by that path"):
        task(local).enqueue()


def test_get_result_returns_the_stored_result():
    enqueued = tasks.add.enqueue(2, 3)
    result = default_task_backend.get_result(enqueued.id)
    assert result.id == enqueued.id
    assert result.status == TaskResultStatus.READY
    assert result.task.func is tasks.add.func
    assert result.args == [2, 3]
    assert tasks.add.get_result(enqueued.id).id == enqueued.id


@pytest.mark.parametrize(
    "result_id", [str(uuid.uuid4()), "not-a-uuid", "", "123", None, 42]
)
def test_get_result_of_unknown_or_malformed_id_raises(result_id):
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result_id)


def test_aget_result():
    enqueued = tasks.add.enqueue(1, 1)
    result = async_to_sync(default_task_backend.aget_result)(enqueued.id)
    assert result.id == enqueued.id
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(default_task_backend.aget_result)(str(uuid.uuid4()))


def test_aenqueue():
    result = async_to_sync(tasks.add.aenqueue)(1, 1)
    assert result.status == TaskResultStatus.READY
    assert DatabaseTask.objects.get().status == "READY"


@pytest.mark.django_db(transaction=True)
def test_enqueue_in_a_rolled_back_transaction_leaves_no_task():
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        tasks.add.enqueue(1, 2)
        assert DatabaseTask.objects.count() == 1
        raise Rollback
    assert DatabaseTask.objects.count() == 0


def test_result_refresh_reads_the_database():
    from django_database_task import process_one_task

    result = tasks.add.enqueue(4, 5)
    process_one_task()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 9


def test_backend_reports_a_database_alias_that_does_not_exist():
    backend = DatabaseTaskBackend("x", {"OPTIONS": {"DATABASE": "nowhere"}})
    errors = list(backend.check())
    assert [error.id for error in errors] == ["django_database_task.E001"]


@pytest.mark.django_db(databases=["default", "tasks"])
def test_tasks_can_live_in_another_database():
    with override_settings(
        TASKS={
            "default": {
                "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
                "OPTIONS": {"DATABASE": "tasks"},
            }
        }
    ):
        result = tasks.add.enqueue(1, 2)
        assert DatabaseTask.objects.using("tasks").filter(pk=result.id).exists()
        assert not DatabaseTask.objects.using("default").exists()
        assert task_backends["default"].get_result(result.id).id == result.id


def test_get_result_of_a_task_that_no_longer_imports_still_reports_it():
    enqueued = tasks.add.enqueue(1, 2)
    DatabaseTask.objects.filter(pk=enqueued.id).update(task_path="tests.tasks.gone")
    result = default_task_backend.get_result(enqueued.id)
    assert result.status == TaskResultStatus.READY
    assert result.task.module_path == "tests.tasks.gone"
    assert result.args == [1, 2]
