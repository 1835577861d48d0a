"""System checks of the HTTP endpoints: mounted but closed to everyone, open
to anyone, or with HMAC replays that go unnoticed."""

from collections.abc import Iterable, Iterator
from typing import Any

from django.core import checks
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ImproperlyConfigured
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend
from django.urls import URLPattern, URLResolver, get_resolver

from .auth import AllowAnyAuth, BoundHandler, HMACSignatureAuth, get_auth_handlers
from .backends import DatabaseTaskBackend

# The endpoints that run or delete tasks, as opposed to counting them.
ACTING_ENDPOINTS = ("run", "run_one", "execute", "purge")


def _views(patterns: Iterable, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(route, view) for every URL pattern, includes followed."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def _endpoint_views() -> list[tuple[str, Any]]:
    """The routes of the root URLconf to TaskEndpointView views."""
    from .views import TaskEndpointView

    try:
        patterns = get_resolver().url_patterns
    except Exception:
        # A broken URLconf is reported by Django's own URL checks.
        return []
    return [
        (route, view)
        for route, view in _views(patterns)
        if isinstance(getattr(view, "view_class", None), type)
        and issubclass(view.view_class, TaskEndpointView)
    ]


def _handler_warnings(alias: str, handlers: list[BoundHandler]) -> Iterator:
    open_to_anyone = sorted(
        {
            endpoint
            for bound in handlers
            if isinstance(bound.handler, AllowAnyAuth)
            for endpoint in bound.endpoints
            if endpoint in ACTING_ENDPOINTS
        },
        key=ACTING_ENDPOINTS.index,
    )
    if open_to_anyone:
        yield checks.Warning(
            f"AllowAnyAuth lets anyone who can reach the URLs use the "
            f"{', '.join(open_to_anyone)} endpoint(s) of task backend {alias!r}, "
            "which run or delete tasks.",
            hint=(
                "Use BearerTokenAuth, HMACSignatureAuth or StaffUserAuth there, "
                'or limit AllowAnyAuth to "ENDPOINTS": ["status"]. Behind a '
                "private network, silence this with SILENCED_SYSTEM_CHECKS."
            ),
            obj=alias,
            id="django_database_task.W003",
        )
    for bound in handlers:
        handler = bound.handler
        if isinstance(handler, HMACSignatureAuth) and isinstance(
            caches[handler.cache_alias], LocMemCache
        ):
            yield checks.Warning(
                f"HMACSignatureAuth of task backend {alias!r} remembers seen "
                f"signatures in the cache {handler.cache_alias!r}, a LocMemCache: "
                "each server process has its own, so a request replayed to "
                "another process is not detected.",
                hint=(
                    "Name a cache shared by all processes (database, Redis, "
                    "Memcached) in the handler's CACHE option."
                ),
                obj=alias,
                id="django_database_task.W102",
            )


def check_endpoint_auth(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Report bad handler configuration before the first request does, and
    warn about endpoints that nobody can open (W001), that anybody can open
    (W002: a view mounted without any wrapper; W003: AllowAnyAuth), and HMAC
    replays a per-process cache misses (W102)."""
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
            handlers = get_auth_handlers(backend)
        except ImproperlyConfigured as e:
            messages.append(
                checks.Error(str(e), obj=alias, id="django_database_task.E101")
            )
            configured = True
            continue
        configured |= bool(handlers)
        messages.extend(_handler_warnings(alias, handlers))
    endpoint_views = _endpoint_views()
    authenticated = {
        route
        for route, view in endpoint_views
        if view.view_initkwargs.get("require_auth")
    }
    if not configured and authenticated:
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
    for route, view in endpoint_views:
        bare = getattr(view, "bare_view", None)
        if bare is not None and bare is view and route not in authenticated:
            messages.append(
                checks.Warning(
                    f"{view.view_class.__name__} is mounted at {route!r} without "
                    "any wrapper, so anyone can use it: views mounted one by one "
                    "do no authentication of their own.",
                    hint=(
                        "Wrap it, e.g. in staff_member_required(...) or in a token "
                        "decorator made with functools.wraps, or build it with "
                        "as_view(require_auth=True) to apply the backends' "
                        "AUTH_HANDLERS."
                    ),
                    obj=route,
                    id="django_database_task.W002",
                )
            )
    return messages
