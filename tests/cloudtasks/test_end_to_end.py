"""The whole loop against a live Django server: enqueue in a transaction,
commit, the Cloud Tasks stand-in receives the create and calls execute/ with
a signed OIDC token, and the task runs."""

import pytest
from django.db import transaction
from django.tasks import TaskResultStatus

from django_database_task.models import DatabaseTask
from tests.tasks import add, fail

from .conftest import SERVICE_ACCOUNT

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.cloudtasks.urls"),
]
WAIT = 60  # seconds; a bound on waiting, not a timed assertion


@pytest.fixture
def loop(configure, cloud_tasks, live_server):
    """A Cloud Tasks backend whose tasks the stand-in delivers to the live
    server, mounted at ``prefix`` (bundled URLconf or decorated view)."""
    cloud_tasks.deliver = True

    def loop(prefix="tasks", **options):
        return configure(
            TASK_HANDLER_URL=f"{live_server.url}/{prefix}/execute/{{task_id}}/",
            OIDC_SERVICE_ACCOUNT_EMAIL=SERVICE_ACCOUNT,
            **options,
        )

    return loop


def delivered(cloud_tasks, task_id):
    name = cloud_tasks.task(task_id)["task"]["name"]
    delivery = cloud_tasks.deliveries[name]
    assert delivery.done.wait(WAIT), "the stand-in never finished delivering"
    return delivery


@pytest.mark.parametrize("prefix", ["tasks", "oidc"])
def test_enqueue_commit_deliver_execute(loop, cloud_tasks, live_server, prefix):
    loop(prefix)
    with transaction.atomic():
        result = add.enqueue(2, 3)
        assert cloud_tasks.created == []
    delivery = delivered(cloud_tasks, result.id)
    assert delivery.statuses == [200]
    assert delivery.bodies[0]["executed"] is True
    assert delivery.bodies[0]["result"]["status"] == "SUCCESSFUL"
    row = DatabaseTask.objects.get(pk=result.id)
    assert (row.status, row.return_value) == (TaskResultStatus.SUCCESSFUL, 5)
    assert len(row.worker_ids) == 1
    # The request really carried an OIDC token for our audience.
    oidc = cloud_tasks.task(result.id)["task"]["httpRequest"]["oidcToken"]
    assert oidc["audience"] == live_server.url


def test_failure_answers_500_and_the_retry_does_not_rerun(loop, cloud_tasks):
    loop()
    result = fail.enqueue("once")
    delivery = delivered(cloud_tasks, result.id)
    # 500 so that Cloud Tasks retries; the retry finds the task FAILED and,
    # without RETRY_FAILED_TASKS, answers 200 so Cloud Tasks stops.
    assert delivery.statuses == [500, 200]
    assert delivery.bodies[1] == {
        "executed": False,
        "reason": "Task is not in READY status",
    }
    row = DatabaseTask.objects.get(pk=result.id)
    assert row.status == TaskResultStatus.FAILED
    assert len(row.worker_ids) == 1


def test_retry_failed_tasks_reruns_on_each_cloud_tasks_retry(loop, cloud_tasks):
    loop(RETRY_FAILED_TASKS=True)
    cloud_tasks.max_attempts = 3
    result = fail.enqueue("again")
    delivery = delivered(cloud_tasks, result.id)
    assert delivery.statuses == [500, 500, 500]
    row = DatabaseTask.objects.get(pk=result.id)
    assert row.status == TaskResultStatus.FAILED
    assert len(row.worker_ids) == 3
    assert len(row.errors) == 3


def test_task_already_run_by_a_worker_is_not_run_twice(loop, cloud_tasks):
    from django_database_task import process_one_task

    loop()
    cloud_tasks.deliver = False
    result = add.enqueue(1, 1)
    assert process_one_task().id == result.id
    # Cloud Tasks delivers late: execute/ answers 200, nothing runs again.
    delivery = cloud_tasks.deliver_task(result.id)
    assert delivery.done.wait(WAIT), "the stand-in never finished delivering"
    assert delivery.statuses == [200]
    assert delivery.bodies[0]["executed"] is False
    assert len(DatabaseTask.objects.get(pk=result.id).worker_ids) == 1
