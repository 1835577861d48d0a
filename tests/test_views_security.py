"""Secure by default: the bundled URLconf refuses every request until the
backend's AUTH_HANDLERS accept it, with a message that says no more than
that (the log says why); views mounted one by one keep the specification's
behaviour; the system check warns about a mounted URLconf that nothing can
open."""

import json
import logging

import pytest
from django.contrib.admin.views.decorators import staff_member_required
from django.core import checks
from django.test import Client
from django.urls import path

from django_database_task.auth import AuthHandler
from django_database_task.checks import check_endpoint_auth
from django_database_task.models import DatabaseTask
from django_database_task.views import RunTasksView, TaskStatusView
from tests import tasks
from tests.endpoints import BEARER, TOKEN, tasks_setting

pytestmark = pytest.mark.django_db

ALLOW_ANY = {"HANDLER": "django_database_task.auth.AllowAnyAuth"}
STAFF = {"HANDLER": "django_database_task.auth.StaffUserAuth"}

# Every endpoint and method of the bundled URLconf, with a body that would
# do work if it got through.
REQUESTS = [
    ("POST", "/tasks/run/", {"max_tasks": 5}),
    ("POST", "/tasks/run-one/", {}),
    ("GET", "/tasks/status/", None),
    ("POST", "/tasks/execute/{id}/", None),
    ("POST", "/tasks/execute/{id}/?allow_retry=true&fail_on_error=true", None),
    ("GET", "/tasks/purge/", None),
    ("GET", "/tasks/purge/?days=0&dry_run=false", None),
    ("POST", "/tasks/purge/", {"days": 0}),
    # Wrong methods, malformed ids and bodies are refused just the same.
    ("GET", "/tasks/run/", None),
    ("DELETE", "/tasks/purge/", None),
    ("POST", "/tasks/execute/not-a-uuid/", None),
    ("POST", "/tasks/run/", "{broken"),
]
REQUEST_IDS = [f"{method} {url}" for method, url, _ in REQUESTS]


def send(client: Client, method: str, url: str, body, task_id: str, **headers):
    data = body if isinstance(body, str) else json.dumps(body) if body else ""
    return client.generic(
        method,
        url.format(id=task_id),
        data,
        content_type="application/json",
        headers=headers,
    )


@pytest.fixture
def work():
    """A READY task and a finished one: nothing may run or disappear."""
    ready = tasks.add.enqueue(1, 1)
    done = tasks.add.enqueue(2, 2)
    DatabaseTask.objects.filter(pk=done.id).update(status="SUCCESSFUL")
    return ready


def assert_untouched(ready) -> None:
    assert DatabaseTask.objects.get(pk=ready.id).status == "READY"
    assert DatabaseTask.objects.count() == 2


@pytest.mark.parametrize("method, url, body", REQUESTS, ids=REQUEST_IDS)
def test_refused_until_auth_is_configured(
    settings, client, caplog, work, method, url, body
):
    settings.TASKS = tasks_setting()
    with caplog.at_level(logging.WARNING, logger="django_database_task.views"):
        response = send(client, method, url, body, work.id)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "Authentication failed."}
    assert "AUTH_HANDLERS" in caplog.text
    assert_untouched(work)


@pytest.mark.parametrize("method, url, body", REQUESTS, ids=REQUEST_IDS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "other-scheme", "empty"],
)
def test_refused_without_the_right_credentials(
    settings, client, work, method, url, body, headers
):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    response = send(client, method, url, body, work.id, **headers)
    assert response.status_code == 403
    assert response.json() == {"error": "Authentication failed."}
    assert_untouched(work)


def test_a_non_staff_session_does_not_open_the_bundled_urlconf(
    settings, client, work, django_user_model
):
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[STAFF])
    client.force_login(django_user_model.objects.create_user("user", password="pw"))
    assert client.post("/tasks/run/").status_code == 403
    assert_untouched(work)


def test_a_backend_naming_no_real_backend_is_authenticated_against_default(
    settings, client, work
):
    settings.TASKS = {
        **tasks_setting(),
        "other": tasks_setting(AUTH_HANDLERS=[ALLOW_ANY])["other"],
    }
    response = send(client, "POST", "/tasks/run/", {"backend_name": "nope"}, work.id)
    assert response.status_code == 403


def test_auth_handlers_of_the_named_backend_apply(settings, client, work):
    settings.TASKS = {
        **tasks_setting(),
        "other": tasks_setting(AUTH_HANDLERS=[ALLOW_ANY])["other"],
    }
    theirs = tasks.add.using(backend="other").enqueue(3, 3)
    response = send(client, "POST", "/tasks/run/", {"backend_name": "other"}, "")
    assert response.json()["results"][0]["id"] == theirs.id
    assert send(client, "POST", "/tasks/run/", {}, "").status_code == 403
    assert client.get("/tasks/status/?backend_name=other").status_code == 200
    assert client.get("/tasks/status/").status_code == 403
    url = f"/tasks/execute/{theirs.id}/?backend_name=other"
    assert client.post(url).status_code == 200
    assert DatabaseTask.objects.get(pk=work.id).status == "READY"


def test_endpoints_limit_a_handler(settings, client, caplog, work):
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[{**ALLOW_ANY, "ENDPOINTS": ["status", "execute"]}]
    )
    assert client.get("/tasks/status/").status_code == 200
    assert client.post(f"/tasks/execute/{work.id}/").status_code == 200
    for url in ["/tasks/run/", "/tasks/run-one/", "/tasks/purge/"]:
        response = client.post(url)
        assert response.status_code == 403
        assert response.json() == {"error": "Authentication failed."}
    assert "no AUTH_HANDLERS entry applies" in caplog.text


def test_the_first_handler_that_accepts_wins(settings, client, django_user_model):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER, STAFF])
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/tasks/status/", headers=bearer).status_code == 200
    assert client.get("/tasks/status/").status_code == 403
    staff = django_user_model.objects.create_user("s", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/tasks/status/").status_code == 200


def test_a_misconfigured_handler_is_refused_with_json(settings, client, caplog):
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[{"HANDLER": "no.such.Handler"}])
    response = client.get("/tasks/status/")
    assert response.status_code == 403
    assert response.json() == {"error": "Authentication failed."}
    assert "misconfigured" in caplog.text
    assert "cannot import HANDLER" in caplog.text


class ExplodingAuth(AuthHandler):
    def authenticate(self, request):
        raise RuntimeError("handler bug")


def test_a_handler_that_crashes_refuses_and_logs(settings, client, caplog):
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[{"HANDLER": "tests.test_views_security.ExplodingAuth"}]
    )
    with caplog.at_level(logging.WARNING, logger="django_database_task.views"):
        response = client.get("/tasks/status/")
    assert response.status_code == 403
    assert "RuntimeError: handler bug" in caplog.text


def test_a_crashing_handler_does_not_hide_the_next_one(settings, client):
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[
            {"HANDLER": "tests.test_views_security.ExplodingAuth"},
            ALLOW_ANY,
        ]
    )
    assert client.get("/tasks/status/").status_code == 200


# Views mounted one by one: AUTH_HANDLERS do not apply.


def test_individual_views_ignore_auth_handlers(settings, client, django_user_model):
    settings.TASKS = tasks_setting()  # nothing configured
    staff = django_user_model.objects.create_user("s", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/staff/status/").status_code == 200
    assert client.get("/tasks/status/").status_code == 403


def test_staff_member_required_redirects_anonymous_users(settings, client, work):
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[ALLOW_ANY])
    response = client.post("/staff/run/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert_untouched(work)


def test_spec_token_decorator(settings, client, work):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting()
    wrong = client.post("/token/run/", headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 403
    assert_untouched(work)
    right = client.post(
        "/token/run/",
        data="{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert right.json()["processed"] == 1


def test_staff_views_need_the_csrf_token(settings, django_user_model):
    """A session is sent by the browser with forged requests too (more in
    test_views_csrf)."""
    settings.TASKS = tasks_setting()
    client = Client(enforce_csrf_checks=True)
    staff = django_user_model.objects.create_user("s", password="pw", is_staff=True)
    client.force_login(staff)
    response = client.post("/staff/run/", data="{}", content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_views_are_never_wrapped_in_atomic_requests():
    from django_database_task.urls import urlpatterns

    for pattern in urlpatterns:
        assert "default" in pattern.callback._non_atomic_requests
    assert "default" in RunTasksView.as_view()._non_atomic_requests


# The system check.

urlpatterns = [path("status/", staff_member_required(TaskStatusView.as_view()))]


def test_check_warns_when_the_bundled_urlconf_is_mounted_without_auth(settings):
    settings.TASKS = tasks_setting()
    messages = check_endpoint_auth()
    assert [m.id for m in messages] == ["django_database_task.W001"]
    assert messages[0].level == checks.WARNING
    assert "AUTH_HANDLERS" in messages[0].msg


def test_check_runs_with_django_checks(settings):
    settings.TASKS = tasks_setting()
    ids = [m.id for m in checks.run_checks(tags=[checks.Tags.urls])]
    assert "django_database_task.W001" in ids


def test_check_is_quiet_when_a_backend_configures_auth(settings):
    settings.TASKS = {
        **tasks_setting(),
        "other": tasks_setting(AUTH_HANDLERS=[STAFF])["other"],
    }
    assert check_endpoint_auth() == []


def test_check_is_quiet_when_the_bundled_urlconf_is_not_mounted(settings):
    settings.TASKS = tasks_setting()
    settings.ROOT_URLCONF = "tests.test_views_security"
    assert check_endpoint_auth() == []


def test_check_reports_a_bad_configuration(settings):
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[{"HANDLER": "no.such.Handler"}])
    messages = check_endpoint_auth()
    assert {m.id for m in messages} == {"django_database_task.E101"}
    assert all(m.level == checks.ERROR for m in messages)
    assert "cannot import HANDLER" in messages[0].msg
