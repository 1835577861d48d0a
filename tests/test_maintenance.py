"""Purging finished tasks, through the API and the command."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_database_task import process_tasks, purge_completed_tasks
from django_database_task.models import DatabaseTask
from tests import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished():
    """Two successful and one failed task finished 10 days ago, one successful
    task finished now, one READY and one RUNNING task."""
    for _ in range(3):
        tasks.add.enqueue(1, 1)
    tasks.fail.enqueue()
    process_tasks(max_tasks=4)
    old = list(DatabaseTask.objects.order_by("enqueued_at")[1:4])
    DatabaseTask.objects.filter(pk__in=[t.pk for t in old]).update(
        finished_at=timezone.now() - timedelta(days=10)
    )
    tasks.add.enqueue(1, 1)
    running = tasks.echo.enqueue()
    DatabaseTask.objects.filter(pk=running.id).update(status="RUNNING")


def statuses():
    return sorted(DatabaseTask.objects.values_list("status", flat=True))


def test_purge_deletes_all_finished_tasks_by_default(finished):
    assert purge_completed_tasks() == 4
    assert statuses() == ["READY", "RUNNING"]


def test_purge_by_age(finished):
    assert purge_completed_tasks(days=7) == 3
    assert statuses() == ["READY", "RUNNING", "SUCCESSFUL"]


def test_purge_by_status(finished):
    assert purge_completed_tasks(statuses="FAILED") == 1
    assert statuses().count("FAILED") == 0


def test_purge_by_task_path(finished):
    assert purge_completed_tasks(task_path="tests.tasks.fail") == 1


def test_purge_in_small_batches_deletes_everything(finished):
    assert purge_completed_tasks(batch_size=1) == 4


def test_purge_accepts_a_century(finished):
    assert purge_completed_tasks(days=36_500) == 0


def test_dry_run_counts_without_deleting(finished):
    assert purge_completed_tasks(days=7, dry_run=True) == 3
    assert len(statuses()) == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"statuses": "READY"}, "Refusing to purge READY tasks"),
        ({"statuses": "SUCCESSFUL,RUNNING"}, "Refusing to purge RUNNING tasks"),
        ({"statuses": "DONE"}, "Unknown status 'DONE'"),
        ({"statuses": ""}, "No status given"),
        ({"days": -1}, "days must be between 0 and 36500"),
        ({"days": 36_501}, "days must be between 0 and 36500"),
        ({"days": 10**9}, "days must be between 0 and 36500"),
        ({"days": "7"}, "days must be an integer"),
        ({"batch_size": 0}, "batch_size must be between 1 and 10000"),
        ({"batch_size": 10001}, "batch_size must be between 1 and 10000"),
    ],
)
def test_purge_refuses_bad_input(finished, kwargs, message):
    with pytest.raises(ValueError, match=message):
        purge_completed_tasks(**kwargs)
    assert len(statuses()) == 6


def run_command(*args):
    from io import StringIO

    out = StringIO()
    call_command("purge_completed_database_tasks", *args, stdout=out)
    return out.getvalue()


def test_command_defaults(finished):
    assert run_command() == "Deleted 4 task(s).\n"


def test_command_options(finished):
    assert (
        run_command("--days", "7", "--dry-run") == "Would delete 3 task(s) (dry run).\n"
    )
    assert run_command("--days", "7", "--status", "FAILED", "--batch-size", "1") == (
        "Deleted 1 task(s).\n"
    )
    assert run_command("--task-path", "tests.tasks.add") == "Deleted 3 task(s).\n"
    assert statuses() == ["READY", "RUNNING"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "READY"], "Refusing to purge READY tasks"),
        (["--status", "SUCCESSFUL,BOGUS"], "Unknown status 'BOGUS'"),
        (["--days", "-3"], "days must be between 0 and 36500"),
        (["--days", "1000000"], "days must be between 0 and 36500"),
        (["--batch-size", "0"], "batch_size must be between 1 and 10000"),
        (["--backend", "missing"], "'missing' is not configured"),
    ],
)
def test_command_refuses_bad_input(finished, args, message):
    with pytest.raises(CommandError, match=message):
        run_command(*args)
    assert len(statuses()) == 6
