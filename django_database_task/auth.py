"""Pluggable authentication for the HTTP endpoints of the bundled URLconf.

Each task backend lists its handlers in ``OPTIONS["AUTH_HANDLERS"]``::

    "AUTH_HANDLERS": [
        {
            "HANDLER": "django_database_task.auth.BearerTokenAuth",
            "ENDPOINTS": ["run", "status"],  # optional; default: every endpoint
            "OPTIONS": {"SETTING": "TASK_API_TOKEN"},
        },
    ]

A request is let through when the first handler that applies to its endpoint
and accepts it is found; with no handler, every request is refused. A backend
class may add handlers of its own by defining ``builtin_auth_handlers()``,
returning entries in the same format, which are tried after the configured
ones.

A handler with ``session_based = True`` accepts a credential that browsers
send by themselves (a session cookie): the views then also require Django's
CSRF check, and never let it authorise a GET that changes data.
"""

import hashlib
import hmac
import os
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.tasks.backends.base import BaseTaskBackend
from django.utils.module_loading import import_string

ENDPOINTS = ("run", "run_one", "status", "execute", "purge", "metrics")
_ENTRY_KEYS = {"HANDLER", "ENDPOINTS", "OPTIONS"}


class AuthHandler:
    """Decides whether one request may use an endpoint.

    Subclasses take their ``OPTIONS`` as keyword arguments, remove the ones
    they understand and pass the rest up, so that a misspelt option is an
    error rather than silently ignored.
    """

    # True when the credential is one the browser sends by itself (cookies).
    session_based: ClassVar[bool] = False

    def __init__(self, backend: BaseTaskBackend, **options: Any) -> None:
        if options:
            raise ImproperlyConfigured(
                f"{type(self).__name__} got unknown option(s) "
                f"{', '.join(sorted(options))} (task backend {backend.alias!r})."
            )
        self.backend = backend

    def authenticate(self, request: HttpRequest) -> bool:
        """True to let the request through; never raises for bad input."""
        raise NotImplementedError


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, giving the reason of a refusal instead of
    Django's HTML 403 page."""

    def _reject(self, request: HttpRequest, reason: str) -> str:
        return reason


def csrf_failure(request: HttpRequest) -> str | None:
    """Why the request fails Django's CSRF check (CSRF_* settings, trusted
    origins and the test client's exemption included), or None if it passes,
    as safe methods always do."""
    check = _CsrfCheck(lambda request: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


@dataclass(frozen=True)
class BoundHandler:
    """A handler and the endpoints it is allowed to open."""

    handler: AuthHandler
    endpoints: frozenset[str]

    def applies_to(self, endpoint: str) -> bool:
        return endpoint in self.endpoints


def _build(backend: BaseTaskBackend, entry: object, where: str) -> BoundHandler:
    if not isinstance(entry, Mapping):
        raise ImproperlyConfigured(
            f"{where} must be a dict with the keys HANDLER, ENDPOINTS (optional) "
            f"and OPTIONS (optional), not {entry!r}."
        )
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise ImproperlyConfigured(
            f"{where} has unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            "allowed: HANDLER, ENDPOINTS, OPTIONS."
        )
    handler_class = entry.get("HANDLER")
    if isinstance(handler_class, str):
        try:
            handler_class = import_string(handler_class)
        except ImportError as e:
            raise ImproperlyConfigured(f"{where}: cannot import HANDLER ({e}).") from e
    if not (isinstance(handler_class, type) and issubclass(handler_class, AuthHandler)):
        raise ImproperlyConfigured(
            f"{where}: HANDLER must be the dotted path of an AuthHandler subclass, "
            f"not {entry.get('HANDLER')!r}."
        )
    endpoints = entry.get("ENDPOINTS", ENDPOINTS)
    if isinstance(endpoints, str) or not isinstance(endpoints, Iterable):
        raise ImproperlyConfigured(
            f"{where}: ENDPOINTS must be a list of endpoint names, not {endpoints!r}."
        )
    endpoints = list(endpoints)
    bad = [name for name in endpoints if name not in ENDPOINTS]
    if bad or not endpoints:
        raise ImproperlyConfigured(
            f"{where}: ENDPOINTS must list some of {', '.join(ENDPOINTS)}; "
            f"got {endpoints!r}."
        )
    options = entry.get("OPTIONS", {})
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(f"{where}: OPTIONS must be a dict, not {options!r}.")
    try:
        handler = handler_class(backend, **options)
    except TypeError as e:
        raise ImproperlyConfigured(f"{where}: bad OPTIONS ({e}).") from e
    return BoundHandler(handler, frozenset(endpoints))


_handlers_by_backend: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_auth_handlers(backend: BaseTaskBackend) -> list[BoundHandler]:
    """The backend's configured handlers followed by its built-in ones.

    Built once per backend instance (Django builds new instances when TASKS
    changes); raises ImproperlyConfigured for a bad configuration.
    """
    if backend in _handlers_by_backend:
        return _handlers_by_backend[backend]
    configured = backend.options.get("AUTH_HANDLERS", [])
    where = f"TASKS[{backend.alias!r}]['OPTIONS']['AUTH_HANDLERS']"
    if isinstance(configured, str | Mapping) or not isinstance(configured, Iterable):
        raise ImproperlyConfigured(f"{where} must be a list, not {configured!r}.")
    handlers = [
        _build(backend, entry, f"{where}[{index}]")
        for index, entry in enumerate(configured)
    ]
    builtin = getattr(backend, "builtin_auth_handlers", None)
    if builtin is not None:
        handlers += [
            _build(backend, entry, f"{type(backend).__name__}.builtin_auth_handlers()")
            for entry in builtin()
        ]
    _handlers_by_backend[backend] = handlers
    return handlers


def _read_secret(backend: BaseTaskBackend, options: dict, handler: str) -> bytes:
    """The shared secret named by exactly one of the SETTING / ENV options."""
    setting = options.pop("SETTING", None)
    env = options.pop("ENV", None)
    if (setting is None) == (env is None):
        raise ImproperlyConfigured(
            f"{handler} (task backend {backend.alias!r}) needs exactly one of the "
            "options SETTING (name of a Django setting) or ENV (name of an "
            "environment variable) holding the secret."
        )
    if setting is not None:
        secret, source = getattr(settings, setting, ""), f"setting {setting}"
    else:
        secret, source = os.environ.get(env, ""), f"environment variable {env}"
    if not isinstance(secret, str) or not secret:
        raise ImproperlyConfigured(
            f"{handler} (task backend {backend.alias!r}): the {source} is empty, "
            "unset or not a string; refusing to check requests against it."
        )
    return secret.encode()


class BearerTokenAuth(AuthHandler):
    """``Authorization: Bearer <secret>``, compared in constant time.

    Options: ``SETTING`` or ``ENV``, the name of the setting or environment
    variable holding the secret, read when the handler is built.
    """

    def __init__(self, backend: BaseTaskBackend, **options: Any) -> None:
        self.secret = _read_secret(backend, options, type(self).__name__)
        super().__init__(backend, **options)

    def authenticate(self, request: HttpRequest) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), self.secret)


TIMESTAMP_HEADER = "X-Task-Timestamp"
NONCE_HEADER = "X-Task-Nonce"
SIGNATURE_HEADER = "X-Task-Signature"
# Unix seconds have 10 digits until the year 2286; more is no timestamp.
MAX_TIMESTAMP_DIGITS = 12


def sign_request(
    secret: str | bytes,
    method: str,
    full_path: str,
    body: bytes,
    timestamp: int,
    nonce: str = "",
) -> str:
    """The hex HMAC-SHA256 that HMACSignatureAuth expects in X-Task-Signature.

    The signed message is ``"<timestamp>\\n<nonce>\\n<METHOD>\\n<path?query>\\n"``
    followed by the raw body.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    message = f"{timestamp}\n{nonce}\n{method.upper()}\n{full_path}\n".encode() + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class HMACSignatureAuth(AuthHandler):
    """A signature over method, path with query, timestamp, nonce and body.

    Headers: ``X-Task-Timestamp`` (Unix seconds), ``X-Task-Nonce`` (optional,
    any string; makes identical requests in the same second distinct) and
    ``X-Task-Signature`` (see ``sign_request``). A timestamp more than
    ``MAX_AGE`` seconds (default 300) away from the server clock, in either
    direction, is refused, and so is a signature already seen within that
    window: seen signatures are kept in the Django cache named ``CACHE``
    (default ``"default"``), which must be shared by all server processes;
    a DummyCache, which remembers nothing, is a configuration error.
    Options: ``SETTING`` or ``ENV`` (the secret), ``MAX_AGE``, ``CACHE``.
    """

    def __init__(
        self,
        backend: BaseTaskBackend,
        *,
        MAX_AGE: int = 300,
        CACHE: str = "default",
        **options: Any,
    ) -> None:
        self.secret = _read_secret(backend, options, type(self).__name__)
        super().__init__(backend, **options)
        if isinstance(MAX_AGE, bool) or not isinstance(MAX_AGE, int) or MAX_AGE < 1:
            raise ImproperlyConfigured(
                f"HMACSignatureAuth MAX_AGE must be a positive number of seconds, "
                f"not {MAX_AGE!r}."
            )
        if CACHE not in settings.CACHES:
            raise ImproperlyConfigured(
                f"HMACSignatureAuth CACHE {CACHE!r} is not in CACHES."
            )
        if isinstance(caches[CACHE], DummyCache):
            raise ImproperlyConfigured(
                f"HMACSignatureAuth CACHE {CACHE!r} is a DummyCache, which "
                "remembers nothing, so replayed requests would be accepted; name "
                "a cache shared by all server processes (database, Redis, "
                "Memcached) in the CACHE option."
            )
        self.max_age = MAX_AGE
        self.cache_alias = CACHE

    def authenticate(self, request: HttpRequest) -> bool:
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not (
            timestamp.isascii()
            and timestamp.isdigit()
            and len(timestamp) <= MAX_TIMESTAMP_DIGITS
            and signature
        ):
            return False
        age = time.time() - int(timestamp)
        if abs(age) > self.max_age:
            return False
        expected = sign_request(
            self.secret,
            request.method or "",
            request.get_full_path(),
            request.body,
            int(timestamp),
            request.headers.get(NONCE_HEADER, ""),
        )
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return False
        # Remembered until the timestamp leaves the window; add() is atomic
        # on shared caches, so only the first of two replays gets in.
        remaining = int(self.max_age - age) + 1
        return caches[self.cache_alias].add(
            f"django_database_task:hmac:{expected}", 1, timeout=remaining
        )


class StaffUserAuth(AuthHandler):
    """A logged-in, active staff user (session authentication)."""

    session_based = True

    def authenticate(self, request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        return bool(
            user is not None
            and user.is_authenticated
            and user.is_active
            and user.is_staff
        )


class AllowAnyAuth(AuthHandler):
    """Lets every request through: say so explicitly to leave endpoints open."""

    def authenticate(self, request: HttpRequest) -> bool:
        return True
