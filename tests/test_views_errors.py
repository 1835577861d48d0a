"""The bad-request table: every malformed request gets a JSON error that says
what was wrong and what is allowed, never a 500 or an HTML page."""

import json
import uuid

import pytest
from django.test import Client

from django_database_task.models import DatabaseTask
from tests import tasks
from tests.endpoints import BEARER, TOKEN, Api, header_api, tasks_setting

POST_BODY_ENDPOINTS = ["run/", "run-one/", "purge/"]


@pytest.fixture(params=["bundled", "token"])
def cron(request, db, settings, client) -> Api:
    """GET purge/ callers: a header credential, as a session cannot purge by
    GET."""
    return header_api(request.param, client, settings)


def assert_error(response, status: int, *fragments: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    message = response.json()["error"]
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("path", POST_BODY_ENDPOINTS)
@pytest.mark.parametrize("raw", [b"{not json", b'{"max_tasks": 1', b"\xff\xfe"])
def test_invalid_json_body(api, path, raw):
    assert_error(api.post(path, raw=raw), 400, "not valid JSON")


@pytest.mark.parametrize("path", POST_BODY_ENDPOINTS)
@pytest.mark.parametrize("body", [[1, 2], "run", 5, None])
def test_body_not_an_object(api, path, body):
    response = api.post(path, raw=json.dumps(body).encode())
    assert_error(response, 400, "must be a JSON object")


@pytest.mark.parametrize("max_tasks", [0, -1, 101, 1000])
def test_max_tasks_outside_1_to_100(api, max_tasks):
    tasks.add.enqueue(1, 1)
    response = api.post("run/", {"max_tasks": max_tasks})
    assert_error(response, 400, "max_tasks must be an integer from 1 to 100")
    assert DatabaseTask.objects.get().status == "READY"


@pytest.mark.parametrize("max_tasks", ["5", 2.5, True, False, None, [5]])
def test_max_tasks_not_an_integer(api, max_tasks):
    response = api.post("run/", {"max_tasks": max_tasks})
    assert_error(response, 400, "max_tasks must be an integer from 1 to 100")


@pytest.mark.parametrize("batch_size", [0, -5, 10001, "100", 1.5, True])
def test_batch_size_outside_1_to_10000_post(api, batch_size):
    response = api.post("purge/", {"batch_size": batch_size})
    assert_error(response, 400, "batch_size must be an integer from 1 to 10000")


@pytest.mark.parametrize("batch_size", ["0", "10001", "abc", "1.5", ""])
def test_batch_size_outside_1_to_10000_get(cron, batch_size):
    response = cron.get("purge/", {"batch_size": batch_size})
    assert_error(response, 400, "batch_size must be an integer from 1 to 10000")


@pytest.mark.parametrize("days", [-1, "7", 1.5, False])
def test_negative_or_non_integer_days_post(api, days):
    assert_error(api.post("purge/", {"days": days}), 400, "days must be an integer")


@pytest.mark.parametrize("days", ["-1", "seven"])
def test_negative_or_non_integer_days_get(cron, days):
    assert_error(cron.get("purge/", {"days": days}), 400, "days must be an integer")


UNKNOWN_STATUSES = ["DONE", "SUCCESSFUL,NOPE", "", ","]
UNFINISHED_STATUSES = ["READY", "RUNNING", "SUCCESSFUL,running"]


@pytest.mark.parametrize("status", UNKNOWN_STATUSES)
def test_unknown_status_post(api, status):
    response = api.post("purge/", {"status": status})
    assert_error(response, 400, "Invalid status", "SUCCESSFUL, FAILED")


@pytest.mark.parametrize("status", UNKNOWN_STATUSES)
def test_unknown_status_get(cron, status):
    response = cron.get("purge/", {"status": status})
    assert_error(response, 400, "Invalid status", "SUCCESSFUL, FAILED")


@pytest.mark.parametrize("status", UNFINISHED_STATUSES)
def test_ready_or_running_status_post(api, status):
    tasks.add.enqueue(1, 1)
    assert_error(api.post("purge/", {"status": status}), 400, "have not finished")
    assert DatabaseTask.objects.count() == 1


@pytest.mark.parametrize("status", UNFINISHED_STATUSES)
def test_ready_or_running_status_get(cron, status):
    tasks.add.enqueue(1, 1)
    assert_error(cron.get("purge/", {"status": status}), 400, "have not finished")
    assert DatabaseTask.objects.count() == 1


@pytest.mark.parametrize("status", [5, ["SUCCESSFUL", 1], {"a": 1}])
def test_status_of_the_wrong_type(api, status):
    assert_error(api.post("purge/", {"status": status}), 400, "status must be")


@pytest.mark.parametrize("backend_name", ["nope", "immediate"])
@pytest.mark.parametrize(
    "call",
    [
        lambda api, params: api.post("run/", params),
        lambda api, params: api.post("run-one/", params),
        lambda api, params: api.get("status/", params),
        lambda api, params: api.post("purge/", params),
        lambda api, params: api.post(
            f"execute/{uuid.uuid4()}/?backend_name={params['backend_name']}"
        ),
    ],
    ids=["run", "run-one", "status", "purge-post", "execute"],
)
def test_backend_name_not_configured(api, call, backend_name):
    response = call(api, {"backend_name": backend_name})
    assert_error(response, 400, "Invalid backend_name", repr(backend_name))


@pytest.mark.parametrize("backend_name", ["nope", "immediate"])
def test_backend_name_not_configured_purge_get(cron, backend_name):
    response = cron.get("purge/", {"backend_name": backend_name})
    assert_error(response, 400, "Invalid backend_name", repr(backend_name))


@pytest.mark.parametrize("backend_name", [5, True, ["default"]])
def test_backend_name_not_a_string(api, backend_name):
    response = api.post("run/", {"backend_name": backend_name})
    assert_error(response, 400, "backend_name must be a string")


@pytest.mark.parametrize("path", ["run/", "run-one/"])
@pytest.mark.parametrize("queue_name", [5, True, ["emails"], {"q": 1}])
def test_queue_name_not_a_string(api, path, queue_name):
    response = api.post(path, {"queue_name": queue_name})
    assert_error(response, 400, "queue_name must be a string")


@pytest.mark.parametrize("task_id", ["not-a-uuid", "123", "%20"])
def test_malformed_uuid_bundled(db, settings, client, task_id):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    response = client.post(
        f"/tasks/execute/{task_id}/", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Task not found"}


def test_malformed_uuid_mounted_with_str_converter(db, settings, client):
    settings.TASK_API_TOKEN = TOKEN
    response = client.post(
        "/token/execute/not-a-uuid/", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Task not found"}


def test_unknown_uuid(api):
    response = api.post(f"execute/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert response.json() == {"error": "Task not found"}


@pytest.mark.parametrize(
    "path, method, allowed",
    [
        ("run/", "GET", "POST"),
        ("run/", "PUT", "POST"),
        ("run-one/", "GET", "POST"),
        ("run-one/", "DELETE", "POST"),
        ("status/", "POST", "GET"),
        ("status/", "PATCH", "GET"),
        ("execute/{id}/", "GET", "POST"),
        ("purge/", "DELETE", "GET, POST"),
        ("purge/", "PUT", "GET, POST"),
        ("run/", "OPTIONS", "POST"),
        ("purge/", "HEAD", "GET, POST"),
    ],
)
def test_wrong_method(api, path, method, allowed):
    task = tasks.add.enqueue(1, 1)
    response = api.request(method, path.format(id=task.id))
    assert response.status_code == 405
    assert response["Allow"] == allowed
    if method != "HEAD":
        assert_error(response, 405, f"Method {method} is not allowed")
        assert response.json()["allowed"] == allowed.split(", ")
    assert DatabaseTask.objects.get().status == "READY"


@pytest.mark.parametrize("value", ["yes", "1", "", "on"])
def test_dry_run_query_value_other_than_true_or_false(cron, value):
    tasks.add.enqueue(1, 1)
    response = cron.get("purge/", {"dry_run": value})
    assert_error(response, 400, 'dry_run must be "true" or "false"')


@pytest.mark.parametrize("value", ["true", 1, None])
def test_dry_run_body_value_not_a_boolean(api, value):
    response = api.post("purge/", {"dry_run": value})
    assert_error(response, 400, "dry_run must be true or false")


@pytest.mark.parametrize("name", ["fail_on_error", "allow_retry"])
def test_execute_flags_other_than_true_or_false(api, name):
    task = tasks.add.enqueue(1, 1)
    response = api.post(f"execute/{task.id}/?{name}=maybe")
    assert_error(response, 400, f'{name} must be "true" or "false"')
    assert DatabaseTask.objects.get().status == "READY"


@pytest.mark.parametrize(
    "call, allowed",
    [
        (lambda api: api.post("run/", {"max_task": 5}), "max_tasks, queue_name"),
        (lambda api: api.post("run-one/", {"max_tasks": 5}), "queue_name"),
        (lambda api: api.get("status/", {"queue": "x"}), "queue_name, backend_name"),
        (lambda api: api.post("purge/", {"day": 5}), "days, status, batch_size"),
    ],
    ids=["run", "run-one", "status", "purge-post"],
)
def test_unknown_parameter(api, call, allowed):
    assert_error(call(api), 400, "Unknown", allowed)


def test_unknown_purge_query_parameter(cron):
    response = cron.get("purge/", {"statuses": "FAILED"})
    assert_error(response, 400, "Unknown", "days, status")


def test_unknown_execute_parameter(api):
    task = tasks.add.enqueue(1, 1)
    response = api.post(f"execute/{task.id}/?retry=true")
    assert_error(response, 400, "Unknown query parameter(s) 'retry'")


def test_query_string_on_a_json_endpoint(api):
    response = api.post("run/?max_tasks=5")
    assert_error(response, 400, "JSON body, not in the query string", "max_tasks")


def test_repeated_query_parameter(cron):
    response = cron.get("purge/?days=1&days=2")
    assert_error(response, 400, "'days' is repeated")


def test_body_too_large(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = api.post("run/", {"queue_name": "x" * 200})
    assert_error(response, 413, "too large")


def test_csrf_is_not_required_with_a_bearer_token(db, settings):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    client = Client(enforce_csrf_checks=True)
    kwargs = {
        "data": {"max_tasks": 1},
        "content_type": "application/json",
        "headers": {"Authorization": f"Bearer {TOKEN}"},
    }
    assert client.post("/tasks/run/", **kwargs).status_code == 200
    assert client.post("/token/run/", **kwargs).status_code == 200
