"""Refusals of the bundled URLconf tell an anonymous caller nothing about the
configuration; the detail goes to the log at WARNING, without traceback, and
a configuration problem is logged once, not once per request."""

import logging
import time

import pytest
from django.core.cache import cache

from django_database_task.auth import AuthHandler, sign_request
from tests.endpoints import BEARER, TOKEN, tasks_setting

pytestmark = pytest.mark.django_db

REFUSED = {"error": "Authentication failed."}
ALLOW_ANY = {"HANDLER": "django_database_task.auth.AllowAnyAuth"}
HMAC = {
    "HANDLER": "django_database_task.auth.HMACSignatureAuth",
    "OPTIONS": {"SETTING": "TASK_HMAC_SECRET"},
}


class ExplodingAuth(AuthHandler):
    def authenticate(self, request):
        raise RuntimeError("handler bug")


# What the refused caller could otherwise learn: aliases, settings, handlers.
SECRETS = ["default", "other", "AUTH_HANDLERS", "TASK_API_TOKEN", "Bearer", "run"]


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.WARNING, logger="django_database_task")
    return caplog


def records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("django_database_task")]


def refuse(client, url="/tasks/run/", **headers):
    response = client.post(url, "{}", content_type="application/json", headers=headers)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json() == REFUSED
    for secret in SECRETS:
        assert secret not in response.content.decode()
    return response


@pytest.mark.parametrize(
    "auth_handlers, detail",
    [
        ([], "AUTH_HANDLERS"),
        ([{**ALLOW_ANY, "ENDPOINTS": ["status"]}], "AUTH_HANDLERS"),
        ([{"HANDLER": "no.such.Handler"}], "cannot import HANDLER"),
        (
            [{**BEARER, "OPTIONS": {"SETTING": "NO_SUCH_SETTING"}}],
            "NO_SUCH_SETTING is empty",
        ),
    ],
    ids=["none", "not-this-endpoint", "bad-handler", "empty-secret"],
)
def test_configuration_problems_are_refused_alike_and_logged_once(
    settings, client, logs, auth_handlers, detail
):
    settings.TASKS = tasks_setting(AUTH_HANDLERS=auth_handlers)
    for _ in range(3):
        refuse(client)
    [record] = records(logs)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert detail in record.getMessage()
    assert "'run'" in record.getMessage() and "'default'" in record.getMessage()


def test_each_endpoint_logs_its_configuration_problem_once(settings, client, logs):
    settings.TASKS = tasks_setting()
    for _ in range(2):
        refuse(client, "/tasks/run/")
        refuse(client, "/tasks/purge/")
    assert len(records(logs)) == 2


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_wrong_credentials_are_refused_alike(settings, client, logs, headers):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    refuse(client, **headers)
    [record] = records(logs)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "no handler accepted" in record.getMessage()


def test_a_handler_that_raises_is_logged_without_traceback(settings, client, logs):
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[{"HANDLER": "tests.test_views_refusals.ExplodingAuth"}]
    )
    refuse(client)
    raised = [r for r in records(logs) if "handler bug" in r.getMessage()]
    assert [r.levelno for r in raised] == [logging.WARNING]
    assert raised[0].exc_info is None
    assert "ExplodingAuth" in raised[0].getMessage()
    assert "RuntimeError" in raised[0].getMessage()


@pytest.mark.parametrize("timestamp", ["1" * 5000, "9" * 13])
def test_an_absurd_hmac_timestamp_is_simply_refused(settings, client, logs, timestamp):
    cache.clear()
    settings.TASK_HMAC_SECRET = "secret"
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[HMAC])
    refuse(client, **{"X-Task-Timestamp": timestamp, "X-Task-Signature": "ab"})
    assert [r.levelno for r in records(logs)] == [logging.WARNING]
    assert "no handler accepted" in records(logs)[0].getMessage()


def test_hmac_still_works_next_to_a_refusal(settings, client):
    cache.clear()
    settings.TASK_HMAC_SECRET = "secret"
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[HMAC])
    timestamp = int(time.time())
    signature = sign_request("secret", "POST", "/tasks/run/", b"{}", timestamp)
    headers = {"X-Task-Timestamp": str(timestamp), "X-Task-Signature": signature}
    ok = client.post(
        "/tasks/run/", "{}", content_type="application/json", headers=headers
    )
    assert ok.json() == {"processed": 0, "results": []}
    refuse(client, **headers)  # replayed


def test_hmac_with_a_cache_that_remembers_nothing_refuses_everything(
    settings, client, logs
):
    """A DummyCache would let every replay in: a configuration error."""
    settings.TASK_HMAC_SECRET = "secret"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    }
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[HMAC])
    timestamp = int(time.time())
    signature = sign_request("secret", "POST", "/tasks/run/", b"{}", timestamp)
    headers = {"X-Task-Timestamp": str(timestamp), "X-Task-Signature": signature}
    refuse(client, **headers)
    refuse(client, **headers)
    [record] = records(logs)
    assert "DummyCache" in record.getMessage()
