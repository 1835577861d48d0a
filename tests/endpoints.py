"""What the endpoint tests share: the settings, and a client aimed at one
way of mounting the endpoints."""

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings as django_settings
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from django.utils import timezone

from django_database_task import process_tasks
from django_database_task.models import DatabaseTask

TOKEN = "s3cret-token-for-tests"
BEARER = {
    "HANDLER": "django_database_task.auth.BearerTokenAuth",
    "OPTIONS": {"SETTING": "TASK_API_TOKEN"},
}


def tasks_setting(**options) -> dict:
    """A default and an ``other`` database backend sharing ``options``, and a
    backend that keeps no tasks in the database."""
    backend = "django_database_task.backends.DatabaseTaskBackend"
    return {
        "default": {"BACKEND": backend, "QUEUES": [], "OPTIONS": dict(options)},
        "other": {"BACKEND": backend, "QUEUES": [], "OPTIONS": dict(options)},
        "immediate": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    }


@dataclass
class Api:
    """A test client aimed at one mounting of the endpoints."""

    client: Client
    prefix: str
    headers: dict = field(default_factory=dict)

    def post(self, path: str, body=None, *, raw: bytes | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            self.prefix + path,
            data=data,
            content_type="application/json",
            headers=self.headers,
        )

    def get(self, path: str, query: dict | None = None):
        return self.client.get(self.prefix + path, query or {}, headers=self.headers)

    def request(self, method: str, path: str):
        return self.client.generic(method, self.prefix + path, headers=self.headers)


def header_api(mount: str, client: Client, settings) -> Api:
    """A caller with a bearer token and no session, the only kind that may
    purge by GET: the bundled URLconf, or views wrapped in the token
    decorator of ``tests.urls`` (``mount="token"``)."""
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    prefix = "/tasks/" if mount == "bundled" else f"/{mount}/"
    return Api(client, prefix, {"Authorization": f"Bearer {TOKEN}"})


def csrf_token(client: Client) -> str:
    """A CSRF token for ``client``, its secret set as the CSRF cookie, as a
    page rendering ``{% csrf_token %}`` would."""
    request = RequestFactory().get("/")
    token = get_token(request)
    client.cookies[django_settings.CSRF_COOKIE_NAME] = request.META["CSRF_COOKIE"]
    return token


def finish(*results, days_ago: float = 0) -> None:
    """Run the enqueued tasks and date their completion ``days_ago``."""
    process_tasks(max_tasks=100)
    process_tasks(max_tasks=100, backend_name="other")
    DatabaseTask.objects.filter(pk__in=[r.id for r in results]).update(
        finished_at=timezone.now() - timedelta(days=days_ago)
    )
