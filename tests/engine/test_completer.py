"""Storing outcomes: guarded by status and holder, several in one commit."""

import pytest
from django.tasks import task_backends

from django_database_task.engine.claim import claim_tasks
from django_database_task.engine.completer import store_all
from django_database_task.engine.executor import execute
from django_database_task.models import DatabaseTask
from tests import tasks
from tests.factories import stored

pytestmark = pytest.mark.django_db


def test_a_batch_stores_each_outcome_and_leaves_a_task_that_changed_hands():
    backend = task_backends["default"]
    for number in range(3):
        tasks.add.enqueue(number, 1)
    rows = claim_tasks(using="default", backend_name="default", worker_id="w", limit=3)
    outcomes = [execute(row, backend) for row in rows]
    # Rescued meanwhile: held by another worker now.
    DatabaseTask.objects.filter(pk=rows[1].pk).update(worker_id="other")
    results = store_all(outcomes, using="default")
    assert [result.status for result in results] == ["SUCCESSFUL"] * 3
    assert [stored(row).status for row in rows] == [
        "SUCCESSFUL",
        "RUNNING",
        "SUCCESSFUL",
    ]
    assert stored(rows[0]).return_value == rows[0].args[0] + 1


def test_the_errors_written_are_those_of_the_claimed_row_plus_this_attempt():
    backend = task_backends["default"]
    failed = tasks.fail.enqueue("again")
    DatabaseTask.objects.filter(pk=failed.id).update(
        errors=[{"exception_class_path": "builtins.KeyError", "traceback": "tb"}]
    )
    [row] = claim_tasks(using="default", backend_name="default", worker_id="w")
    outcome = execute(row, backend)
    store_all([outcome], using="default")
    paths = [error["exception_class_path"] for error in stored(row).errors]
    assert paths == ["builtins.KeyError", "builtins.ValueError"]


def test_a_batch_is_one_update_per_status_and_keeps_each_tasks_own_values():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    backend = task_backends["default"]
    tasks.add.enqueue(1, 1)
    tasks.add.enqueue(2, 2)
    tasks.add.enqueue(None, None)  # Fails: a TypeError.
    tasks.fail.enqueue("one")
    tasks.fail.enqueue("two")
    rows = claim_tasks(using="default", backend_name="default", worker_id="w", limit=9)
    outcomes = [execute(row, backend) for row in rows]
    with CaptureQueriesContext(connection) as queries:
        results = store_all(outcomes, using="default")
    updates = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")
    ]
    assert len(updates) == 2
    for row, outcome, result in zip(rows, outcomes, results, strict=True):
        saved = stored(row)
        assert saved.status == result.status == outcome.status
        assert saved.finished_at == result.finished_at == outcome.finished_at
        assert saved.worker_id == ""
        if saved.status == "SUCCESSFUL":
            assert saved.return_value == result.return_value == sum(row.args)
        else:
            assert saved.return_value is None
            assert len(saved.errors) == 1
            assert saved.errors[0]["traceback"] == result.errors[0].traceback
    assert (
        sorted(stored(row).status for row in rows)
        == ["FAILED"] * 3 + ["SUCCESSFUL"] * 2
    )
