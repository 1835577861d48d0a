"""Every documented parameter, default, limit and response of the HTTP
endpoints, through the bundled URLconf (with a bearer token) and through the
views mounted one by one behind ``staff_member_required``."""

import uuid
from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone

from django_database_task import process_tasks
from django_database_task.models import DatabaseTask
from tests import tasks
from tests.endpoints import finish
from tests.factories import status_of

# POST run/


def test_run_processes_up_to_ten_tasks_by_default(api):
    for i in range(12):
        tasks.add.enqueue(i, i)
    response = api.post("run/", {})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["processed"] == 10
    assert DatabaseTask.objects.filter(status=TaskResultStatus.READY).count() == 2


def test_run_accepts_an_empty_body(api):
    tasks.add.enqueue(1, 2)
    response = api.post("run/", raw=b"")
    assert response.status_code == 200
    assert response.json()["processed"] == 1


@pytest.mark.parametrize("max_tasks", [1, 3])
def test_run_max_tasks(api, max_tasks):
    for i in range(5):
        tasks.add.enqueue(i, i)
    response = api.post("run/", {"max_tasks": max_tasks})
    assert response.json()["processed"] == max_tasks


def test_run_max_tasks_upper_limit_100_is_accepted(api):
    for i in range(101):
        tasks.add.enqueue(i, i)
    response = api.post("run/", {"max_tasks": 100})
    assert response.status_code == 200
    assert response.json()["processed"] == 100


def test_run_response_lists_each_result(api):
    ok = tasks.add.enqueue(1, 2)
    bad = tasks.fail.enqueue()
    response = api.post("run/", {"max_tasks": 10})
    assert response.json() == {
        "processed": 2,
        "results": [
            {"id": ok.id, "status": "SUCCESSFUL", "task_path": "tests.tasks.add"},
            {"id": bad.id, "status": "FAILED", "task_path": "tests.tasks.fail"},
        ],
    }


def test_run_queue_name_filters(api):
    newsletter = tasks.send_newsletter.enqueue()
    other = tasks.add.enqueue(1, 1)
    response = api.post("run/", {"queue_name": "emails", "max_tasks": 5})
    assert [r["id"] for r in response.json()["results"]] == [newsletter.id]
    assert status_of(other) == "READY"


def test_run_queue_name_null_means_every_queue(api):
    tasks.send_newsletter.enqueue()
    tasks.add.enqueue(1, 1)
    response = api.post("run/", {"queue_name": None})
    assert response.json()["processed"] == 2


def test_run_backend_name_defaults_to_default(api):
    mine = tasks.add.enqueue(1, 1)
    theirs = tasks.add.using(backend="other").enqueue(1, 1)
    assert [r["id"] for r in api.post("run/").json()["results"]] == [mine.id]
    assert status_of(theirs) == "READY"


def test_run_backend_name_selects_the_backend(api):
    mine = tasks.add.enqueue(1, 1)
    theirs = tasks.add.using(backend="other").enqueue(1, 1)
    response = api.post("run/", {"backend_name": "other"})
    assert [r["id"] for r in response.json()["results"]] == [theirs.id]
    assert status_of(mine) == "READY"


def test_run_with_nothing_to_do(api):
    assert api.post("run/").json() == {"processed": 0, "results": []}


# POST run-one/


def test_run_one_processes_one_task(api):
    first = tasks.urgent.enqueue()
    second = tasks.add.enqueue(1, 1)
    response = api.post("run-one/", {})
    assert response.status_code == 200
    assert response.json() == {
        "processed": True,
        "result": {
            "id": first.id,
            "status": "SUCCESSFUL",
            "task_path": "tests.tasks.urgent",
        },
    }
    assert status_of(second) == "READY"


def test_run_one_reports_a_failed_task(api):
    failed = tasks.fail.enqueue()
    assert api.post("run-one/").json()["result"] == {
        "id": failed.id,
        "status": "FAILED",
        "task_path": "tests.tasks.fail",
    }


def test_run_one_with_nothing_to_do(api):
    response = api.post("run-one/")
    assert response.status_code == 200
    assert response.json() == {"processed": False, "result": None}


def test_run_one_queue_name(api):
    tasks.add.enqueue(1, 1)
    newsletter = tasks.send_newsletter.enqueue()
    response = api.post("run-one/", {"queue_name": "emails"})
    assert response.json()["result"]["id"] == newsletter.id


def test_run_one_backend_name(api):
    tasks.add.enqueue(1, 1)
    theirs = tasks.add.using(backend="other").enqueue(2, 2)
    response = api.post("run-one/", {"backend_name": "other"})
    assert response.json()["result"]["id"] == theirs.id


# GET status/


def test_status_counts(api):
    tasks.add.enqueue(1, 1)
    tasks.add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 1)
    tasks.fail.enqueue()
    process_tasks(max_tasks=1, queue_name=None)  # runs add (enqueued first)
    tasks.send_newsletter.enqueue()
    response = api.get("status/")
    assert response.status_code == 200
    body = response.json()
    oldest = DatabaseTask.objects.filter(status="READY", run_after=None).earliest(
        "due_at"
    )
    assert body == {
        "pending_count": 3,
        "ready": 3,
        "running": 0,
        "failed": 0,
        "successful": 1,
        "delayed": 1,
        "oldest_pending_since": oldest.due_at.isoformat(),
        "workers": 0,
    }


def test_status_with_no_pending_task(api):
    body = api.get("status/").json()
    assert body["pending_count"] == 0
    assert body["oldest_pending_since"] is None


def test_status_queue_name(api):
    tasks.add.enqueue(1, 1)
    tasks.send_newsletter.enqueue()
    tasks.send_newsletter.enqueue()
    assert api.get("status/", {"queue_name": "emails"}).json()["pending_count"] == 2


def test_status_backend_name(api):
    tasks.add.enqueue(1, 1)
    tasks.add.using(backend="other").enqueue(1, 1)
    tasks.add.using(backend="other").enqueue(1, 1)
    assert api.get("status/").json()["pending_count"] == 1
    assert api.get("status/", {"backend_name": "other"}).json()["pending_count"] == 2


# POST execute/<uuid>/


def test_execute_runs_the_task(api):
    tasks.urgent.enqueue()
    chosen = tasks.add.enqueue(2, 3)
    response = api.post(f"execute/{chosen.id}/")
    assert response.status_code == 200
    assert response.json() == {
        "executed": True,
        "result": {
            "id": chosen.id,
            "status": "SUCCESSFUL",
            "task_path": "tests.tasks.add",
        },
    }
    assert DatabaseTask.objects.get(pk=chosen.id).return_value == 5


def test_execute_runs_a_task_that_is_not_due_yet(api):
    later = tasks.add.using(run_after=timezone.now() + timedelta(days=1)).enqueue(1, 1)
    assert api.post(f"execute/{later.id}/").json()["executed"] is True
    assert status_of(later) == "SUCCESSFUL"


def test_execute_a_finished_task_is_not_executed_again(api):
    done = tasks.add.enqueue(1, 1)
    finish(done)
    response = api.post(f"execute/{done.id}/")
    assert response.status_code == 200
    assert response.json() == {
        "executed": False,
        "reason": "Task is not in READY status",
    }


def test_execute_a_running_task_answers_2xx_without_running_it(api):
    running = tasks.add.enqueue(1, 1)
    DatabaseTask.objects.filter(pk=running.id).update(status="RUNNING")
    response = api.post(f"execute/{running.id}/")
    assert response.status_code == 200
    assert response.json()["executed"] is False


def test_execute_unknown_task(api):
    response = api.post(f"execute/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert response.json() == {"error": "Task not found"}


def test_execute_failure_answers_200_by_default(api):
    failing = tasks.fail.enqueue()
    response = api.post(f"execute/{failing.id}/")
    assert response.status_code == 200
    assert response.json()["result"]["status"] == "FAILED"


def test_execute_fail_on_error_false_is_the_default(api):
    failing = tasks.fail.enqueue()
    response = api.post(f"execute/{failing.id}/?fail_on_error=false")
    assert response.status_code == 200


def test_execute_fail_on_error_true_answers_500_with_the_result(api):
    failing = tasks.fail.enqueue()
    response = api.post(f"execute/{failing.id}/?fail_on_error=true")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "executed": True,
        "result": {
            "id": failing.id,
            "status": "FAILED",
            "task_path": "tests.tasks.fail",
        },
    }


def test_execute_fail_on_error_true_answers_200_on_success(api):
    ok = tasks.add.enqueue(1, 1)
    assert api.post(f"execute/{ok.id}/?fail_on_error=true").status_code == 200


def test_execute_failed_task_is_not_retried_by_default(api):
    failing = tasks.fail.enqueue()
    finish(failing)
    response = api.post(f"execute/{failing.id}/?allow_retry=false")
    assert response.json() == {
        "executed": False,
        "reason": "Task is not in READY status",
    }
    assert len(DatabaseTask.objects.get(pk=failing.id).worker_ids) == 1


def test_execute_allow_retry_reruns_a_failed_task(api):
    failing = tasks.fail.enqueue()
    finish(failing)
    response = api.post(f"execute/{failing.id}/?allow_retry=true")
    assert response.status_code == 200
    assert response.json()["executed"] is True
    assert len(DatabaseTask.objects.get(pk=failing.id).worker_ids) == 2


def test_execute_allow_retry_does_not_rerun_a_successful_task(api):
    done = tasks.add.enqueue(1, 1)
    finish(done)
    response = api.post(f"execute/{done.id}/?allow_retry=true")
    assert response.json() == {
        "executed": False,
        "reason": "Task is not in READY or FAILED status",
    }


def test_execute_backend_name(api):
    theirs = tasks.add.using(backend="other").enqueue(1, 1)
    assert api.post(f"execute/{theirs.id}/").status_code == 404
    response = api.post(f"execute/{theirs.id}/?backend_name=other")
    assert response.json()["executed"] is True
