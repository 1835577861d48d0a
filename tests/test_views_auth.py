"""Each bundled auth handler accepts and refuses through the bundled URLconf."""

import time

import pytest
from django.core.cache import cache

from django_database_task.auth import sign_request
from tests.endpoints import tasks_setting
from tests.test_auth import SECRET, TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_hmac_over_http(settings, client):
    settings.TASK_HMAC_SECRET = SECRET
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[
            {
                "HANDLER": "django_database_task.auth.HMACSignatureAuth",
                "OPTIONS": {"SETTING": "TASK_HMAC_SECRET"},
            }
        ]
    )
    body = b'{"max_tasks": 2}'
    timestamp = int(time.time())
    headers = {
        "X-Task-Timestamp": str(timestamp),
        "X-Task-Signature": sign_request(
            SECRET, "POST", "/tasks/run/", body, timestamp
        ),
    }
    post = lambda: client.post(  # noqa: E731
        "/tasks/run/", body, content_type="application/json", headers=headers
    )
    assert post().json() == {"processed": 0, "results": []}
    assert post().status_code == 403  # replayed
    query = "/tasks/purge/?days=30&dry_run=true"
    headers["X-Task-Signature"] = sign_request(SECRET, "GET", query, b"", timestamp)
    assert client.get(query, headers=headers).json() == {"count": 0, "dry_run": True}
    stale = timestamp - 301
    headers = {
        "X-Task-Timestamp": str(stale),
        "X-Task-Signature": sign_request(SECRET, "GET", query, b"", stale),
    }
    assert client.get(query, headers=headers).status_code == 403


def test_bearer_over_http_from_an_environment_variable(settings, client, monkeypatch):
    monkeypatch.setenv("DDT_TEST_TOKEN", TOKEN)
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[
            {
                "HANDLER": "django_database_task.auth.BearerTokenAuth",
                "OPTIONS": {"ENV": "DDT_TEST_TOKEN"},
            }
        ]
    )
    ok = client.get("/tasks/status/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.json()["pending_count"] == 0
    bad = client.get("/tasks/status/", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 403


def test_an_empty_secret_refuses_every_request_over_http(settings, client):
    settings.TASK_API_TOKEN = ""
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[
            {
                "HANDLER": "django_database_task.auth.BearerTokenAuth",
                "OPTIONS": {"SETTING": "TASK_API_TOKEN"},
            }
        ]
    )
    response = client.get("/tasks/status/", headers={"Authorization": "Bearer "})
    assert response.status_code == 403
    assert response.json() == {"error": "Authentication failed."}


def test_staff_session_over_http(settings, client, django_user_model):
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[{"HANDLER": "django_database_task.auth.StaffUserAuth"}]
    )
    assert client.get("/tasks/status/").status_code == 403
    client.force_login(django_user_model.objects.create_user("u", password="pw"))
    assert client.get("/tasks/status/").status_code == 403
    client.force_login(
        django_user_model.objects.create_user("s", password="pw", is_staff=True)
    )
    assert client.get("/tasks/status/").status_code == 200


def test_allow_any_over_http(settings, client):
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[{"HANDLER": "django_database_task.auth.AllowAnyAuth"}]
    )
    assert client.get("/tasks/status/").status_code == 200
