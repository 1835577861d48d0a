"""System checks: endpoint views mounted without any wrapper (W002), endpoints
left open to anyone (W003), and HMAC signatures whose replays the nonce cache
cannot catch (E101 for a cache that stores nothing, W102 for a per-process
one). This module is also the URLconf the W002 tests mount."""

import io
from functools import wraps

import pytest
from django.contrib.admin.views.decorators import staff_member_required
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client
from django.urls import include, path

from django_database_task.views import (
    ExecuteTaskView,
    PurgeCompletedTasksView,
    RunTasksView,
    TaskStatusView,
)
from tests.endpoints import BEARER, TOKEN, tasks_setting

# Django's model checks ask the database which features it supports.
pytestmark = pytest.mark.django_db(databases="__all__")

ALLOW_ANY = {"HANDLER": "django_database_task.auth.AllowAnyAuth"}
HMAC = {
    "HANDLER": "django_database_task.auth.HMACSignatureAuth",
    "OPTIONS": {"SETTING": "TASK_HMAC_SECRET"},
}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


def without_wraps(view):
    """A wrapper that copies nothing from the view (no view_class either)."""

    def wrapper(request, *args, **kwargs):
        return view(request, *args, **kwargs)

    return wrapper


def with_wraps(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        return view(request, *args, **kwargs)

    return wrapper


urlpatterns = [
    path("bare/run/", RunTasksView.as_view()),
    path(
        "nested/", include([path("execute/<str:task_id>/", ExecuteTaskView.as_view())])
    ),
    path("staff/run/", staff_member_required(RunTasksView.as_view())),
    path("wrapped/purge/", with_wraps(PurgeCompletedTasksView.as_view())),
    path("plain/purge/", without_wraps(PurgeCompletedTasksView.as_view())),
    path("auth/status/", TaskStatusView.as_view(require_auth=True)),
]


def ids(messages) -> list[str]:
    return [m.id for m in messages if m.id.startswith("django_database_task.")]


def by_id(messages, check_id: str) -> list:
    return [m for m in messages if m.id == check_id]


def check_output() -> str:
    """What `manage.py check` reports, silenced checks left out."""
    stderr = io.StringIO()
    call_command("check", stdout=io.StringIO(), stderr=stderr)
    return stderr.getvalue()


@pytest.fixture
def bare_urls(settings):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    settings.ROOT_URLCONF = "tests.test_checks"


# W002: endpoint views mounted without any wrapper


def test_bare_views_are_reported(bare_urls):
    warnings = by_id(checks.run_checks(), "django_database_task.W002")
    assert all(w.level == checks.WARNING for w in warnings)
    assert sorted(w.obj for w in warnings) == [
        "bare/run/",
        "nested/execute/<str:task_id>/",
    ]
    [run] = [w for w in warnings if w.obj == "bare/run/"]
    assert "RunTasksView" in run.msg
    assert "staff_member_required" in run.hint


def test_bare_views_are_open_to_anyone(bare_urls):
    """What the warning is about: nobody authenticates these requests."""
    assert Client().get("/auth/status/").status_code == 403
    response = Client().post("/bare/run/", "{}", content_type="application/json")
    assert response.status_code == 200


def test_bare_views_are_reported_by_manage_py_check(bare_urls):
    output = check_output()
    assert "django_database_task.W002" in output
    assert "bare/run/" in output


def test_bare_view_warning_can_be_silenced(bare_urls, settings):
    settings.SILENCED_SYSTEM_CHECKS = ["django_database_task.W002"]
    assert "django_database_task." not in check_output()


def test_the_test_project_mounts_no_bare_view(settings):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    assert ids(checks.run_checks()) == []


# W003: AllowAnyAuth on endpoints that run or delete tasks


def test_allow_any_on_every_endpoint_is_reported(settings):
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[ALLOW_ANY])
    warnings = by_id(checks.run_checks(), "django_database_task.W003")
    assert sorted(w.obj for w in warnings) == ["default", "other"]
    assert warnings[0].level == checks.WARNING
    for name in ["run", "run_one", "execute", "purge"]:
        assert name in warnings[0].msg
    assert "status" not in warnings[0].msg


@pytest.mark.parametrize("endpoints", [["purge"], ["status", "execute"]])
def test_allow_any_on_one_dangerous_endpoint_is_reported(settings, endpoints):
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[{**ALLOW_ANY, "ENDPOINTS": endpoints}]
    )
    assert "django_database_task.W003" in ids(checks.run_checks())


def test_allow_any_on_status_only_is_fine(settings):
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[{**ALLOW_ANY, "ENDPOINTS": ["status"]}]
    )
    assert ids(checks.run_checks()) == []


def test_allow_any_warning_can_be_silenced(settings):
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[ALLOW_ANY])
    settings.SILENCED_SYSTEM_CHECKS = ["django_database_task.W003"]
    assert "django_database_task." not in check_output()


# E101 / W102: the HMAC nonce cache


def test_hmac_with_a_dummy_cache_is_an_error(settings):
    settings.TASK_HMAC_SECRET = "secret"
    settings.CACHES = DUMMY
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[HMAC])
    errors = by_id(checks.run_checks(), "django_database_task.E101")
    assert errors and all(e.level == checks.ERROR for e in errors)
    assert "DummyCache" in errors[0].msg
    with pytest.raises(SystemCheckError, match="DummyCache"):
        call_command("check")


def test_hmac_with_a_per_process_cache_is_a_warning(settings):
    settings.TASK_HMAC_SECRET = "secret"
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[HMAC])
    warnings = by_id(checks.run_checks(), "django_database_task.W102")
    assert sorted(w.obj for w in warnings) == ["default", "other"]
    assert warnings[0].level == checks.WARNING
    assert "LocMemCache" in warnings[0].msg
    assert "process" in warnings[0].msg


def test_hmac_with_a_shared_cache_is_fine(settings, tmp_path):
    settings.TASK_HMAC_SECRET = "secret"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "nonces": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        },
    }
    hmac = {**HMAC, "OPTIONS": {**HMAC["OPTIONS"], "CACHE": "nonces"}}
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[hmac])
    assert ids(checks.run_checks()) == []
