"""Hostile input gets a JSON 400 (or the refusal of an unauthenticated
caller), never a 500: deep JSON nesting, numbers too large for a date or for
int(), and text no database can store."""

import json

import pytest
from django.test import Client

from django_database_task.models import DatabaseTask
from tests import tasks
from tests.endpoints import Api, header_api, tasks_setting

pytestmark = pytest.mark.django_db

DEEP = b"[" * 100_000
BODY_ENDPOINTS = ["run/", "run-one/", "purge/"]
HUGE = "9" * 5000


def assert_error(response, status: int, *fragments: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    for fragment in fragments:
        assert fragment in response.json()["error"]


@pytest.fixture(params=["bundled", "token"])
def cron(request, settings, client) -> Api:
    """GET purge/ callers: a header credential, no session."""
    return header_api(request.param, client, settings)


# Deep nesting


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_deep_nesting_is_a_400(api, path):
    assert_error(api.post(path, raw=DEEP), 400, "nested too deeply")


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
@pytest.mark.parametrize(
    "body", [DEEP, b'{"backend_name": ' + DEEP], ids=["list", "in-object"]
)
def test_deep_nesting_from_an_unauthenticated_caller_is_refused(
    settings, client, path, body
):
    settings.TASKS = tasks_setting()
    response = client.post(f"/tasks/{path}", body, content_type="application/json")
    assert_error(response, 403)


# Numbers


@pytest.mark.parametrize("days", [36_501, 1_000_000, 999_999_999_999, 10**30])
def test_days_beyond_a_century_post(api, days):
    tasks.add.enqueue(1, 1)
    response = api.post("purge/", {"days": days})
    assert_error(response, 400, "days must be an integer from 0 to 36500")
    assert DatabaseTask.objects.count() == 1


@pytest.mark.parametrize("days", ["36501", "1000000", "999999999999", HUGE])
def test_days_beyond_a_century_get(cron, days):
    response = cron.get("purge/", {"days": days})
    assert_error(response, 400, "days must be an integer from 0 to 36500")
    assert len(response.json()["error"]) < 200


def test_a_century_is_accepted(api):
    assert api.post("purge/", {"days": 36_500}).json()["deleted"] == 0


@pytest.mark.parametrize("name", ["days", "batch_size"])
def test_thousands_of_digits_in_the_query_string(cron, name):
    response = cron.get("purge/", {name: HUGE})
    assert_error(response, 400, f"{name} must be an integer")


@pytest.mark.parametrize("value", ["-" + HUGE, "0" * 5000 + "1"])
def test_padded_or_negative_digit_strings(cron, value):
    assert_error(cron.get("purge/", {"days": value}), 400, "days must be an integer")


@pytest.mark.parametrize(
    "path, name", [("run/", "max_tasks"), ("purge/", "batch_size")]
)
def test_thousands_of_digits_in_a_json_body(api, path, name):
    raw = f'{{"{name}": {HUGE[:4000]}}}'.encode()
    response = api.post(path, raw=raw)
    assert_error(response, 400, f"{name} must be an integer")
    assert len(response.json()["error"]) < 200


# Text no database can store

BAD_TEXT = [("a\x00b", "NUL character"), ("a\ud800b", "lone surrogate")]
BAD_TEXT_IDS = ["nul", "surrogate"]


@pytest.mark.parametrize("path", ["run/", "run-one/"])
@pytest.mark.parametrize("name", ["queue_name", "backend_name"])
@pytest.mark.parametrize("value, problem", BAD_TEXT, ids=BAD_TEXT_IDS)
def test_bad_text_in_a_json_body(api, path, name, value, problem):
    tasks.add.enqueue(1, 1)
    response = api.post(path, {name: value})
    assert_error(response, 400, name, problem)
    assert DatabaseTask.objects.get().status == "READY"


@pytest.mark.parametrize("value, problem", BAD_TEXT, ids=BAD_TEXT_IDS)
def test_bad_backend_name_in_a_purge_body(api, value, problem):
    assert_error(api.post("purge/", {"backend_name": value}), 400, problem)


@pytest.mark.parametrize("name", ["queue_name", "backend_name"])
def test_nul_in_the_status_query_string(api, name):
    assert_error(api.get("status/", {name: "a\x00b"}), 400, name, "NUL character")


def test_nul_in_the_purge_query_string(cron):
    response = cron.get("purge/", {"backend_name": "\x00"})
    assert_error(response, 400, "backend_name", "NUL character")


def test_nul_in_the_execute_query_string(api):
    task = tasks.add.enqueue(1, 1)
    response = api.post(f"execute/{task.id}/?backend_name=%00")
    assert_error(response, 400, "backend_name", "NUL character")
    assert DatabaseTask.objects.get().status == "READY"


@pytest.mark.parametrize("value", ["\x00", "\ud800"], ids=BAD_TEXT_IDS)
def test_bad_backend_name_from_an_unauthenticated_caller(settings, value):
    settings.TASKS = tasks_setting()
    response = Client().post(
        "/tasks/run/",
        json.dumps({"backend_name": value}),
        content_type="application/json",
    )
    assert_error(response, 403)
