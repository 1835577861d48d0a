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
