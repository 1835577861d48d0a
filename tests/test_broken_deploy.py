"""A deploy that breaks a task module must cost that task, not the worker."""

import pytest
from django.tasks import TaskResultStatus

from django_database_task.models import DatabaseTask
from tests import tasks
from tests.endpoints import BEARER, TOKEN, tasks_setting
from tests.factories import status_of
from tests.processes import start_worker

BROKEN_PATH = "tests.broken.raises_runtime_error.job"


def enqueue_broken():
    broken = tasks.add.enqueue(1, 1)
    DatabaseTask.objects.filter(pk=broken.id).update(task_path=BROKEN_PATH, priority=1)
    return broken


@pytest.mark.django_db(transaction=True)
def test_the_worker_process_fails_the_task_and_runs_the_next(test_database_env):
    broken = enqueue_broken()
    healthy = tasks.add.enqueue(2, 2)
    worker = start_worker(test_database_env)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert f"FAILED {broken.id} {BROKEN_PATH}" in err
    assert out.endswith("Processed 2 task(s).\n")
    assert status_of(healthy) == TaskResultStatus.SUCCESSFUL
    error = DatabaseTask.objects.get(pk=broken.id).errors[0]
    assert "RuntimeError: the deploy forgot a setting" in error["traceback"]


@pytest.mark.django_db
def test_execute_answers_json_for_it(client, settings):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    broken = enqueue_broken()
    response = client.post(
        f"/tasks/execute/{broken.id}/?fail_on_error=true",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 500
    assert response.json() == {
        "executed": True,
        "result": {"id": broken.id, "status": "FAILED", "task_path": BROKEN_PATH},
    }
    assert status_of(broken) == TaskResultStatus.FAILED
