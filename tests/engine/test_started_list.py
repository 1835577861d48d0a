"""A worker names the tasks it starts in its registry row (its started list)
before it starts them, so that a crash costs an attempt only to the tasks it
had started, never to those it had claimed ahead (see the rescuer's tests,
and tests/test_crash_recovery.py for a real kill)."""

import pytest
from django.tasks import task_backends

from django_database_task.engine.worker import Worker
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_task_is_named_before_it_starts_and_tasks_claimed_ahead_are_not():
    results = [tasks.look_at_my_worker.enqueue() for _ in range(80)]
    worker = Worker(task_backends["default"])
    assert worker.run() == len(results)

    seen = {
        str(row.pk): row.return_value
        for row in DatabaseTask.objects.filter(status="SUCCESSFUL")
    }
    assert len(seen) == len(results)
    claimed_ahead = 0
    for task_id, look in seen.items():
        began_by_then = {
            other for other, theirs in seen.items() if theirs["began"] <= look["began"]
        }
        held, listed = set(look["held"]), set(look["listed"])
        assert task_id in listed
        # Every task started and not yet stored is named...
        assert held & began_by_then <= listed
        # ...and a task held but not named had not begun.
        assert not (held - listed) & began_by_then
        claimed_ahead = max(claimed_ahead, len(held - listed))
    # The worker did claim ahead, beyond what it named.
    assert claimed_ahead > 0


def test_a_worker_run_by_id_keeps_no_started_list():
    """It runs the one task it claims at once: a crash counts that attempt,
    as it would without any list."""
    result = tasks.look_at_my_worker.enqueue()
    Worker(task_backends["default"]).run_task(result.id)
    assert DatabaseTask.objects.get(pk=result.id).return_value["listed"] is None
    assert not DatabaseTaskWorker.objects.exists()
