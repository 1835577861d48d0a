"""System check: the bundled endpoints are mounted but nothing can open them."""

from collections.abc import Iterable, Iterator

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend
from django.urls import URLPattern, URLResolver, get_resolver

from .auth import get_auth_handlers
from .backends import DatabaseTaskBackend


def _views(patterns: Iterable) -> Iterator:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def _mounts_authenticated_views() -> bool:
    """Whether the root URLconf routes to a view built with require_auth=True,
    as every view of django_database_task.urls is."""
    from .views import TaskEndpointView

    try:
        patterns = get_resolver().url_patterns
    except Exception:
        # A broken URLconf is reported by Django's own URL checks.
        return False
    for view in _views(patterns):
        view_class = getattr(view, "view_class", None)
        if (
            isinstance(view_class, type)
            and issubclass(view_class, TaskEndpointView)
            and view.view_initkwargs.get("require_auth")
        ):
            return True
    return False


def check_endpoint_auth(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn when the bundled URLconf is mounted while no task backend has an
    auth handler (every request is then refused), and report bad handler
    configuration before the first request does."""
    messages: list[checks.CheckMessage] = []
    configured = False
    for alias in task_backends.settings:
        try:
            backend = task_backends[alias]
        except InvalidTaskBackend:
            continue  # Django's own task checks report it.
        if not isinstance(backend, DatabaseTaskBackend):
            continue
        try:
            configured |= bool(get_auth_handlers(backend))
        except ImproperlyConfigured as e:
            messages.append(
                checks.Error(str(e), obj=alias, id="django_database_task.E101")
            )
            configured = True
    if not configured and _mounts_authenticated_views():
        messages.append(
            checks.Warning(
                "django_database_task.urls is mounted, but no task backend "
                "configures OPTIONS['AUTH_HANDLERS'], so its endpoints refuse "
                "every request with 403.",
                hint=(
                    'Add e.g. "AUTH_HANDLERS": [{"HANDLER": '
                    '"django_database_task.auth.BearerTokenAuth", "OPTIONS": '
                    '{"SETTING": "TASK_API_TOKEN"}}] to the OPTIONS of a '
                    "TASKS backend, or remove the include."
                ),
                id="django_database_task.W001",
            )
        )
    return messages
