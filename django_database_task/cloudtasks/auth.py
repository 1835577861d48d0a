"""OIDC authentication of Cloud Tasks requests: an AuthHandler for the bundled
URLconf and a decorator for views mounted one by one."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, task_backends
from django.tasks.backends.base import BaseTaskBackend

from ..auth import AuthHandler
from .oidc import GOOGLE_CERTS_URL, TokenRefused, bearer_token, verify_token

logger = logging.getLogger("django_database_task.cloudtasks")
REFUSED = "OIDC token refused."


@dataclass(frozen=True)
class Expected:
    """What a token must say; None fields come from the Cloud Tasks backend."""

    audience: str | None
    service_account_email: str | None
    certs_url: str | None

    def resolve(self, backend: BaseTaskBackend | None) -> tuple[str, str, str]:
        from .backend import CloudTasksDatabaseBackend

        cloud = backend if isinstance(backend, CloudTasksDatabaseBackend) else None
        audience = self.audience or (cloud.audience() if cloud else None)
        email = self.service_account_email or (
            cloud.service_account_email if cloud else None
        )
        certs_url = self.certs_url or (cloud.certs_url if cloud else GOOGLE_CERTS_URL)
        if not audience or not email:
            missing = " and ".join(
                name
                for name, value in (
                    ("audience", audience),
                    ("service account email", email),
                )
                if not value
            )
            raise ImproperlyConfigured(
                f"Cloud Tasks OIDC verification has no {missing}: set "
                "OIDC_SERVICE_ACCOUNT_EMAIL (and OIDC_AUDIENCE or TASK_HANDLER_URL) "
                "in the Cloud Tasks backend's OPTIONS, or pass them explicitly."
            )
        return audience, email, certs_url

    def check(self, request: HttpRequest, backend: BaseTaskBackend | None) -> dict:
        """The token's claims; TokenRefused (or ImproperlyConfigured) if not."""
        audience, email, certs_url = self.resolve(backend)
        token = bearer_token(request.headers.get("Authorization", ""))
        return verify_token(
            token, audience=audience, service_account_email=email, certs_url=certs_url
        )


class CloudTasksOIDCAuth(AuthHandler):
    """Accepts requests carrying a Google-signed OIDC token for our audience
    and service account, as Cloud Tasks sends them.

    Options (each defaults to the Cloud Tasks backend's): ``AUDIENCE``,
    ``SERVICE_ACCOUNT_EMAIL``, ``CERTS_URL``.
    """

    def __init__(
        self,
        backend: BaseTaskBackend,
        *,
        AUDIENCE: str | None = None,
        SERVICE_ACCOUNT_EMAIL: str | None = None,
        CERTS_URL: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(backend, **options)
        self.expected = Expected(AUDIENCE, SERVICE_ACCOUNT_EMAIL, CERTS_URL)
        backend_email = getattr(backend, "service_account_email", None)
        if not (SERVICE_ACCOUNT_EMAIL or backend_email):
            # Without the email, any Google account's token would do.
            raise ImproperlyConfigured(
                f"CloudTasksOIDCAuth (task backend {backend.alias!r}) needs the "
                "SERVICE_ACCOUNT_EMAIL option or the backend's "
                "OIDC_SERVICE_ACCOUNT_EMAIL."
            )

    def authenticate(self, request: HttpRequest) -> bool:
        try:
            self.expected.check(request, self.backend)
        except (TokenRefused, ImproperlyConfigured) as error:
            _log(error)
            return False
        return True


def _log(error: Exception) -> None:
    """The detail of a refusal, for the operator only: it can name the
    certs URL, the expected audience and the service account."""
    if isinstance(error, TokenRefused):
        logger.warning("Cloud Tasks OIDC token refused: %s", error.message)
    else:
        logger.warning("Cloud Tasks OIDC verification is misconfigured: %s", error)


def _refusal(error: Exception) -> JsonResponse:
    """401 with its fixed message when no usable token was sent; otherwise
    a 403 that tells the caller nothing about our configuration."""
    _log(error)
    if isinstance(error, TokenRefused) and error.status == 401:
        response = JsonResponse({"error": error.message}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="cloud-tasks"'
        return response
    return JsonResponse({"error": REFUSED}, status=403)


def verify_cloud_tasks_oidc(
    view: Callable | None = None,
    *,
    audience: str | None = None,
    service_account_email: str | None = None,
    certs_url: str | None = None,
    backend_name: str = DEFAULT_TASK_BACKEND_ALIAS,
) -> Callable:
    """Let a request reach ``view`` only with a valid Cloud Tasks OIDC token.

    Use as ``verify_cloud_tasks_oidc(view, audience=...)`` or as
    ``@verify_cloud_tasks_oidc(audience=...)``. Values not given come from
    the Cloud Tasks backend ``backend_name``. Refusals are JSON: 401 without
    a token (or with one that is not a JWT), a generic 403 otherwise; why is
    logged at WARNING.
    """
    if view is None:
        return lambda actual: verify_cloud_tasks_oidc(
            actual,
            audience=audience,
            service_account_email=service_account_email,
            certs_url=certs_url,
            backend_name=backend_name,
        )
    expected = Expected(audience, service_account_email, certs_url)

    def refusal(request: HttpRequest) -> JsonResponse | None:
        backend = (
            task_backends[backend_name]
            if backend_name in task_backends.settings
            else None
        )
        try:
            expected.check(request, backend)
        except (TokenRefused, ImproperlyConfigured) as error:
            return _refusal(error)
        return None

    if iscoroutinefunction(view):

        async def async_wrapper(request, *args, **kwargs):
            response = await sync_to_async(refusal)(request)
            return response or await view(request, *args, **kwargs)

        wrapper = markcoroutinefunction(wraps(view)(async_wrapper))
    else:

        @wraps(view)
        def wrapper(request, *args, **kwargs):
            return refusal(request) or view(request, *args, **kwargs)

    return wrapper
