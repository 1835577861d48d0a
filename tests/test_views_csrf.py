"""A session is a credential the browser sends by itself, to any site's
forms: requests it authorises must pass Django's CSRF check, and it never
authorises GET purge/. Header credentials (bearer, HMAC, OIDC) need no CSRF
token, GET purge/ included."""

import json
import time

import pytest
from django.test import Client

from django_database_task.auth import sign_request
from django_database_task.models import DatabaseTask
from tests import tasks
from tests.endpoints import BEARER, TOKEN, Api, csrf_token, header_api, tasks_setting

pytestmark = pytest.mark.django_db

STAFF = {"HANDLER": "django_database_task.auth.StaffUserAuth"}
# Each request that changes something, and what it changes if let through.
UNSAFE = ["run/", "run-one/", "execute/{id}/", "purge/"]


@pytest.fixture
def work():
    """A READY task and a finished one."""
    ready = tasks.add.enqueue(1, 1)
    done = tasks.add.enqueue(2, 2)
    DatabaseTask.objects.filter(pk=done.id).update(status="SUCCESSFUL")
    return ready


def untouched(ready) -> bool:
    return (
        DatabaseTask.objects.get(pk=ready.id).status == "READY"
        and DatabaseTask.objects.count() == 2
    )


@pytest.fixture(params=["bundled", "individual"])
def browser(request, settings, django_user_model) -> Api:
    """A staff member's browser, which enforces CSRF like a real one, logged
    in to the bundled URLconf (StaffUserAuth) or to the views mounted one by
    one behind staff_member_required."""
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[STAFF, BEARER])
    client = Client(enforce_csrf_checks=True)
    staff = django_user_model.objects.create_user("s", password="pw", is_staff=True)
    client.force_login(staff)
    return Api(client, "/tasks/" if request.param == "bundled" else "/staff/")


@pytest.mark.parametrize("path", UNSAFE)
def test_a_session_post_without_csrf_token_is_refused(browser, work, path):
    response = browser.post(path.format(id=work.id))
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "CSRF check failed" in response.json()["error"]
    assert untouched(work)


@pytest.mark.parametrize("path", UNSAFE)
def test_a_session_post_with_a_wrong_csrf_token_is_refused(browser, work, path):
    csrf_token(browser.client)
    browser.headers = {"X-CSRFToken": "x" * 64}
    response = browser.post(path.format(id=work.id))
    assert response.status_code == 403
    assert "CSRF check failed" in response.json()["error"]
    assert untouched(work)


@pytest.mark.parametrize("path", UNSAFE)
def test_a_session_post_with_the_csrf_token_works(browser, work, path):
    browser.headers = {"X-CSRFToken": csrf_token(browser.client)}
    response = browser.post(path.format(id=work.id))
    assert response.status_code == 200
    assert not untouched(work)


@pytest.mark.parametrize("query", [{}, {"days": "0", "dry_run": "false"}])
def test_a_session_never_authorises_get_purge(browser, work, query):
    browser.headers = {"X-CSRFToken": csrf_token(browser.client)}
    response = browser.get("purge/", query)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "use POST" in response.json()["error"]
    assert untouched(work)


def test_a_session_needs_no_csrf_token_to_read_the_status(browser, work):
    response = browser.get("status/")
    assert response.status_code == 200
    assert response.json()["pending_count"] == 1


def test_a_session_request_with_a_bearer_token_needs_no_csrf_token(
    settings, django_user_model, work
):
    """The bearer token proves the request is no forgery, even when the
    session handler comes first."""
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[STAFF, BEARER])
    client = Client(enforce_csrf_checks=True)
    client.force_login(
        django_user_model.objects.create_user("s", password="pw", is_staff=True)
    )
    api = Api(client, "/tasks/", {"Authorization": f"Bearer {TOKEN}"})
    assert api.post("run/").json()["processed"] == 1
    assert api.get("purge/").json()["deleted"] == 2


@pytest.fixture(params=["bundled", "token"])
def cron(request, settings) -> Api:
    """A caller with a bearer token, no session and no CSRF token."""
    return header_api(request.param, Client(enforce_csrf_checks=True), settings)


def test_a_bearer_post_needs_no_csrf_token(cron, work):
    assert cron.post("run/", {"max_tasks": 1}).json()["processed"] == 1
    assert cron.post("purge/", {}).json() == {"deleted": 2, "dry_run": False}


@pytest.mark.parametrize("path", ["run-one/", "execute/{id}/"])
def test_a_bearer_post_needs_no_csrf_token_bundled(settings, work, path):
    api = header_api("bundled", Client(enforce_csrf_checks=True), settings)
    assert api.post(path.format(id=work.id)).status_code == 200
    assert DatabaseTask.objects.get(pk=work.id).status == "SUCCESSFUL"


def test_a_bearer_get_purge_works(cron, work):
    assert cron.get("purge/", {"dry_run": "true"}).json()["count"] == 1
    assert cron.get("purge/").json() == {"deleted": 1, "dry_run": False}
    assert str(DatabaseTask.objects.get().pk) == work.id


def test_hmac_post_needs_no_csrf_token(settings, work):
    settings.TASK_HMAC_SECRET = "hmac-secret"
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[
            STAFF,
            {
                "HANDLER": "django_database_task.auth.HMACSignatureAuth",
                "OPTIONS": {"SETTING": "TASK_HMAC_SECRET"},
            },
        ]
    )
    body = json.dumps({"max_tasks": 1}).encode()
    timestamp = int(time.time())
    signature = sign_request("hmac-secret", "POST", "/tasks/run/", body, timestamp)
    response = Client(enforce_csrf_checks=True).post(
        "/tasks/run/",
        body,
        content_type="application/json",
        headers={"X-Task-Timestamp": str(timestamp), "X-Task-Signature": signature},
    )
    assert response.json()["processed"] == 1
