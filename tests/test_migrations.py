"""Upgrading a project's task table: nothing is lost, no meaning changes."""

import json
import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from django_database_task import run_task_by_id
from django_database_task.models import DatabaseTask

pytestmark = pytest.mark.django_db(transaction=True)

OLD_CANCELLED = {
    "exception_class_path": "django_database_task.admin.actions.TaskCancelled",
    "traceback": "django_database_task.admin.actions.TaskCancelled: Cancelled by "
    "ada from the Django admin.\n",
}
FAILED_BY_ITSELF = {"exception_class_path": "builtins.ValueError", "traceback": "x"}


def insert_before_0003(errors: list) -> str:
    """A FAILED row as the 0002 schema stores it (no cancelled_at column)."""
    task_id = uuid.uuid4()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_database_task (id, task_path, queue_name, priority, "
            "backend_name, status, args, kwargs, due_at, enqueued_at, finished_at, "
            "errors, worker_ids) VALUES (%s, 'tests.tasks.add', 'default', 0, "
            "'default', 'FAILED', %s, '{}', %s, %s, %s, %s, '[\"w\"]')",
            [
                DatabaseTask._meta.pk.get_db_prep_value(task_id, connection),
                "[1, 2]",
                *[connection.ops.adapt_datetimefield_value(now)] * 3,
                json.dumps(errors),
            ],
        )
    return str(task_id)


def test_tasks_cancelled_before_0003_stay_cancelled_after_the_upgrade():
    call_command("migrate", "django_database_task", "0002", verbosity=0)
    try:
        cancelled = insert_before_0003([FAILED_BY_ITSELF, OLD_CANCELLED])
        failed = insert_before_0003([FAILED_BY_ITSELF])
    finally:
        call_command("migrate", "django_database_task", verbosity=0)
    assert DatabaseTask.objects.get(pk=cancelled).cancelled_at is not None
    assert DatabaseTask.objects.get(pk=failed).cancelled_at is None
    assert run_task_by_id(cancelled, allow_retry=True) is None
    assert run_task_by_id(failed, allow_retry=True).status == "SUCCESSFUL"
