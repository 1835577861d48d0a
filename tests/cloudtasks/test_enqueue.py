"""Enqueueing creates the Cloud Task after commit, through the real client."""

import logging
from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.tasks import TaskResultStatus, task_backends

from django_database_task import process_one_task
from django_database_task.models import DatabaseTask
from tests.tasks import add, send_newsletter

from .conftest import SERVICE_ACCOUNT

pytestmark = pytest.mark.django_db(transaction=True)
HANDLER = "https://tasks.example.com/tasks/execute/{task_id}/"


def test_task_is_created_only_after_commit_and_carries_only_the_id(
    configure, cloud_tasks
):
    configure()
    with transaction.atomic():
        result = add.enqueue(1, 2)
        assert cloud_tasks.created == []
    created = cloud_tasks.task(result.id)
    task = created["task"]
    assert (created["project"], created["location"], created["queue"]) == (
        "proj",
        "europe-west9",
        "default",
    )
    assert task["name"] == (
        f"projects/proj/locations/europe-west9/queues/default/tasks/{result.id}"
    )
    assert task["httpRequest"]["url"] == (
        f"https://tasks.example.com/tasks/execute/{result.id}/?fail_on_error=true"
    )
    assert task["httpRequest"]["httpMethod"] in (1, "POST")
    # Nothing but the id: no body, no arguments anywhere.
    assert "body" not in task["httpRequest"]
    assert "oidcToken" not in task["httpRequest"]
    assert "scheduleTime" not in task
    assert DatabaseTask.objects.get(pk=result.id).status == TaskResultStatus.READY


def test_rollback_creates_no_cloud_task(configure, cloud_tasks):
    configure()
    with pytest.raises(RuntimeError), transaction.atomic():
        add.enqueue(1, 2)
        raise RuntimeError("roll back")
    assert cloud_tasks.created == []
    assert cloud_tasks.requests == []
    assert not DatabaseTask.objects.exists()


def test_repeated_create_is_deduplicated_by_name(configure, cloud_tasks, caplog):
    backend = configure()
    result = add.enqueue(1, 2)
    with caplog.at_level(logging.INFO, "django_database_task.cloudtasks"):
        assert backend.create_cloud_task(result.id, "default") is True
    assert len(cloud_tasks.requests) == 2
    assert len(cloud_tasks.created) == 1
    assert f"Cloud Task for task {result.id} already exists" in caplog.text


def test_run_after_becomes_the_schedule_time(configure, cloud_tasks):
    configure()
    when = datetime(2031, 5, 17, 8, 30, 15, 250000, tzinfo=UTC)
    result = add.using(run_after=when).enqueue(1, 2)
    schedule = cloud_tasks.task(result.id)["task"]["scheduleTime"]
    assert datetime.fromisoformat(schedule) == when


def test_queue_name_is_the_cloud_tasks_queue(configure, cloud_tasks):
    configure()
    newsletter = send_newsletter.enqueue()
    batch = add.using(queue_name="batch").enqueue(1, 1)
    assert cloud_tasks.task(newsletter.id)["queue"] == "emails"
    assert cloud_tasks.task(batch.id)["queue"] == "batch"
    assert "/queues/batch/tasks/" in cloud_tasks.task(batch.id)["task"]["name"]


def test_oidc_token_names_the_service_account_and_audience(configure, cloud_tasks):
    configure(OIDC_SERVICE_ACCOUNT_EMAIL=SERVICE_ACCOUNT)
    result = add.enqueue(1, 2)
    token = cloud_tasks.task(result.id)["task"]["httpRequest"]["oidcToken"]
    # The audience defaults to the origin of the handler URL.
    assert token == {
        "serviceAccountEmail": SERVICE_ACCOUNT,
        "audience": "https://tasks.example.com",
    }


def test_explicit_oidc_audience(configure, cloud_tasks):
    configure(
        OIDC_SERVICE_ACCOUNT_EMAIL=SERVICE_ACCOUNT,
        OIDC_AUDIENCE="https://audience.example.com/tasks",
    )
    result = add.enqueue(1, 2)
    token = cloud_tasks.task(result.id)["task"]["httpRequest"]["oidcToken"]
    assert token["audience"] == "https://audience.example.com/tasks"


def test_url_names_other_backend_and_asks_for_retries(configure, cloud_tasks):
    configure(
        "cloud",
        RETRY_FAILED_TASKS=True,
        TASK_HANDLER_URL="https://tasks.example.com/x/{task_id}/?region=eu",
    )
    result = add.using(backend="cloud").enqueue(1, 2)
    assert cloud_tasks.task(result.id)["task"]["httpRequest"]["url"] == (
        f"https://tasks.example.com/x/{result.id}/?region=eu&fail_on_error=true"
        "&allow_retry=true&backend_name=cloud"
    )


def test_handler_url_keeps_parameters_the_user_set(configure, cloud_tasks):
    configure(TASK_HANDLER_URL=HANDLER + "?fail_on_error=false")
    result = add.enqueue(1, 2)
    assert cloud_tasks.task(result.id)["task"]["httpRequest"]["url"].endswith(
        f"/{result.id}/?fail_on_error=false"
    )


def test_outage_enqueue_succeeds_and_a_worker_runs_the_task(
    configure, cloud_tasks, caplog
):
    configure()
    cloud_tasks.stop()
    with (
        caplog.at_level(logging.WARNING, "django_database_task.cloudtasks"),
        transaction.atomic(),
    ):
        result = add.enqueue(20, 22)
    assert result.status == TaskResultStatus.READY
    assert f"Could not create the Cloud Task for task {result.id}" in caplog.text
    assert DatabaseTask.objects.get(pk=result.id).status == TaskResultStatus.READY
    ran = process_one_task()
    assert (ran.id, ran.status, ran.return_value) == (
        result.id,
        TaskResultStatus.SUCCESSFUL,
        42,
    )


def test_refused_create_leaves_the_task_ready(configure, cloud_tasks, caplog):
    configure()
    cloud_tasks.missing_queues.add("nowhere")
    with caplog.at_level(logging.WARNING, "django_database_task.cloudtasks"):
        result = add.using(queue_name="nowhere").enqueue(1, 2)
    assert cloud_tasks.created == []
    assert f"Could not create the Cloud Task for task {result.id}" in caplog.text
    assert "NotFound" in caplog.text
    assert DatabaseTask.objects.get(pk=result.id).status == TaskResultStatus.READY


def test_undetectable_target_is_logged_and_warned_by_check(
    configure, cloud_tasks, caplog, monkeypatch
):
    monkeypatch.delenv("GCE_METADATA_HOST")
    backend = configure(
        CLOUD_TASKS_PROJECT=None, CLOUD_TASKS_LOCATION=None, TASK_HANDLER_URL=None
    )
    with caplog.at_level(logging.WARNING, "django_database_task.cloudtasks"):
        result = add.enqueue(1, 2)
    assert cloud_tasks.requests == []
    assert "could not detect CLOUD_TASKS_PROJECT, CLOUD_TASKS_LOCATION, " in (
        caplog.text
    )
    assert DatabaseTask.objects.get(pk=result.id).status == TaskResultStatus.READY
    [warning] = backend.check()
    assert warning.id == "django_database_task.W201"
    assert "TASK_HANDLER_URL" in warning.msg


def test_everything_detected_on_cloud_run(configure, cloud_tasks, monkeypatch):
    monkeypatch.setenv("K_SERVICE", "web")
    configure(
        CLOUD_TASKS_PROJECT=None,
        CLOUD_TASKS_LOCATION=None,
        TASK_HANDLER_URL=None,
        OIDC_SERVICE_ACCOUNT_EMAIL=SERVICE_ACCOUNT,
    )
    result = add.enqueue(1, 2)
    created = cloud_tasks.task(result.id)
    assert (created["project"], created["location"]) == (
        "stand-in-project",
        "europe-west9",
    )
    host = "https://web-123456789.europe-west9.run.app"
    request = created["task"]["httpRequest"]
    assert request["url"] == f"{host}/tasks/execute/{result.id}/?fail_on_error=true"
    assert request["oidcToken"]["audience"] == host
    assert list(task_backends["default"].check()) == []


def test_everything_detected_on_app_engine(configure, cloud_tasks, monkeypatch):
    monkeypatch.setenv("GAE_SERVICE", "default")
    monkeypatch.setenv("GAE_VERSION", "v3")
    configure(TASK_HANDLER_URL=None, OIDC_SERVICE_ACCOUNT_EMAIL=SERVICE_ACCOUNT)
    result = add.enqueue(1, 2)
    request = cloud_tasks.task(result.id)["task"]["httpRequest"]
    host = "https://v3-dot-stand-in-project.appspot.com"
    assert request["url"] == f"{host}/tasks/execute/{result.id}/?fail_on_error=true"
    assert request["oidcToken"]["audience"] == host


def test_handler_path_option(configure, cloud_tasks, monkeypatch):
    monkeypatch.setenv("K_SERVICE", "web")
    configure(TASK_HANDLER_URL=None, TASK_HANDLER_PATH="/jobs/{task_id}/run/")
    result = add.enqueue(1, 2)
    assert cloud_tasks.task(result.id)["task"]["httpRequest"]["url"] == (
        f"https://web-123456789.europe-west9.run.app/jobs/{result.id}/run/"
        "?fail_on_error=true"
    )


def test_async_enqueue_creates_the_cloud_task(configure, cloud_tasks):
    configure()
    result = async_to_sync(add.aenqueue)(4, 5)
    assert cloud_tasks.task(result.id)["queue"] == "default"


def test_grpc_transport_option_reaches_the_client(configure, cloud_tasks):
    backend = configure(CLOUD_TASKS_TRANSPORT="grpc", CLOUD_TASKS_API_ENDPOINT=None)
    assert backend.client().transport.kind == "grpc"
    assert configure().client().transport.kind == "rest"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"CLOUD_TASKS_TRANSPORT": "carrier-pigeon"}, "CLOUD_TASKS_TRANSPORT"),
        ({"CLOUD_TASKS_TIMEOUT": 0}, "CLOUD_TASKS_TIMEOUT"),
        ({"CLOUD_TASKS_TIMEOUT": "5"}, "CLOUD_TASKS_TIMEOUT"),
        ({"TASK_HANDLER_URL": "https://x.example.com/run/"}, "TASK_HANDLER_URL"),
        ({"TASK_HANDLER_PATH": "/tasks/execute/"}, "TASK_HANDLER_PATH"),
    ],
)
def test_bad_options_are_refused_clearly(configure, options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        configure(**options)
