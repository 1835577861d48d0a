"""HTTP endpoints that run, count, execute and purge tasks.

For hosts without a worker process or cron (serverless, PaaS). Every answer is
JSON, bad requests included. Mounted one by one the views do no
authentication of their own (wrap them, e.g. in ``staff_member_required``);
the bundled URLconf builds them with ``require_auth=True``, which refuses
every request that the backend's ``AUTH_HANDLERS`` do not accept.

The views are CSRF-exempt for callers with a credential in a header (bearer
token, HMAC signature, OIDC token), which no other site can make a browser
send. A request authorised by a session must pass Django's CSRF check, and a
session never authorises GET purge/.
"""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResult, TaskResultStatus
from django.tasks.exceptions import InvalidTaskBackend, TaskResultDoesNotExist
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from .api import (
    get_backend,
    get_queue_stats,
    process_one_task,
    process_tasks,
    run_task_by_id,
)
from .auth import csrf_failure, get_auth_handlers
from .engine.maintenance.cleaner import (
    DEFAULT_PURGE_STATUSES,
    MAX_BATCH_SIZE,
    MAX_DAYS,
    parse_statuses,
    purge_completed_tasks,
)
from .params import BadRequest, Params, parse_body, shown

logger = logging.getLogger(__name__)

MAX_TASKS_LIMIT = 100
# All an unauthenticated caller learns; the log says why.
AUTHENTICATION_FAILED = "Authentication failed."

# Configuration problems already logged: (backend alias, endpoint, problem).
_reported: set[tuple[str, str, str]] = set()


@receiver(setting_changed)
def _forget_reported(*, setting: str, **kwargs: Any) -> None:
    """A new TASKS setting (in tests) deserves its own report."""
    if setting == "TASKS":
        _reported.clear()


def error(message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def result_json(result: TaskResult) -> dict[str, str]:
    return {
        "id": result.id,
        "status": result.status.value,
        "task_path": result.task.module_path,
    }


def _auth_backend_name(data: object) -> str:
    """The backend a request names, for choosing its auth handlers; the
    default backend if the request names none (or nothing readable)."""
    name = data.get("backend_name") if isinstance(data, Mapping) else None
    if isinstance(name, str) and name:
        try:
            return get_backend(name).alias
        except InvalidTaskBackend:
            pass
    return DEFAULT_TASK_BACKEND_ALIAS


def _has_session_user(request: HttpRequest) -> bool:
    """Whether AuthenticationMiddleware found a logged-in user: a credential
    the browser sends by itself, to forged requests too."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


@method_decorator(csrf_exempt, name="dispatch")
class TaskEndpointView(View):
    """JSON answers for every outcome, and the optional authentication."""

    endpoint: ClassVar[str]
    # Whether POST parameters come in a JSON body (else: the query string).
    body_params: ClassVar[bool] = True
    # Whether GET changes data, so that a session may not authorise it.
    get_changes_data: ClassVar[bool] = False
    require_auth = False

    @classmethod
    def as_view(cls, **initkwargs: Any):
        view = super().as_view(**initkwargs)
        # Tasks commit their own claims and results: never wrap them in the
        # request transaction of ATOMIC_REQUESTS.
        view._non_atomic_requests = set(connections.settings)
        # functools.wraps copies this onto a wrapper, where it names another
        # function: the system check finds views mounted with no wrapper.
        view.bare_view = view
        return view

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any):
        try:
            request.body  # noqa: B018 - read now, so that the size limit answers here
        except RequestDataTooBig as e:
            return error(f"The request body is too large ({e}).", 413)
        if self.require_auth:
            refusal = self.refusal(request)
        elif _has_session_user(request):
            refusal = self.session_refusal(request)
        else:
            refusal = None
        if refusal is not None:
            return refusal
        method = (request.method or "").lower()
        if method not in self.http_method_names:
            allowed = [name.upper() for name in self.http_method_names]
            response = error(
                f"Method {request.method} is not allowed here; "
                f"allowed: {', '.join(allowed)}.",
                405,
                allowed=allowed,
            )
            response["Allow"] = ", ".join(allowed)
            return response
        try:
            return getattr(self, method)(request, *args, **kwargs)
        except BadRequest as e:
            return error(str(e), 400)

    def session_refusal(self, request: HttpRequest) -> JsonResponse | None:
        """None when a request authorised by a session may go on: it must
        not be a GET that changes data, and must pass the CSRF check."""
        if request.method == "GET" and self.get_changes_data:
            return error(
                f"A session cannot authorise GET {self.endpoint}/, which deletes "
                "data; use POST with the CSRF token (or a bearer token).",
                403,
            )
        reason = csrf_failure(request)
        if reason is None:
            return None
        logger.warning(
            "Task endpoint %r refused a session request: CSRF check failed (%s).",
            self.endpoint,
            reason,
        )
        return error(f"CSRF check failed: {reason}", 403)

    def refusal(self, request: HttpRequest) -> JsonResponse | None:
        """None when a handler of the named backend accepts the request, else
        a 403 that tells the caller nothing of the configuration."""
        if self.body_params and request.method == "POST":
            try:
                data = parse_body(request)
            except ValueError:
                data = None
        else:
            data = request.GET
        alias = _auth_backend_name(data)
        try:
            handlers = get_auth_handlers(get_backend(alias))
        except (ImproperlyConfigured, InvalidTaskBackend) as e:
            return self._misconfigured(
                alias, f"its authentication is misconfigured: {e}"
            )
        handlers = [bound for bound in handlers if bound.applies_to(self.endpoint)]
        if not handlers:
            return self._misconfigured(
                alias,
                "no AUTH_HANDLERS entry applies to it. Add OPTIONS['AUTH_HANDLERS'] "
                f"to TASKS[{alias!r}], e.g. [{{'HANDLER': "
                "'django_database_task.auth.BearerTokenAuth', 'OPTIONS': "
                "{'SETTING': 'TASK_API_TOKEN'}}]; see the README section on "
                "securing the endpoints",
            )
        session_refusal = None
        for bound in handlers:
            handler = bound.handler
            try:
                accepted = handler.authenticate(request)
            except Exception as e:
                # Fail closed, with a trace that an anonymous caller cannot
                # turn into a flood of tracebacks.
                logger.warning(
                    "Auth handler %s of task backend %r raised %s: %s",
                    type(handler).__name__,
                    alias,
                    type(e).__name__,
                    e,
                )
                continue
            if accepted and not handler.session_based:
                return None
            if accepted:
                session_refusal = self.session_refusal(request)
                if session_refusal is None:
                    return None
        if session_refusal is not None:
            return session_refusal
        logger.warning(
            "Task endpoint %r of task backend %r refused a request: no handler "
            "accepted its credentials.",
            self.endpoint,
            alias,
        )
        return error(AUTHENTICATION_FAILED, 403)

    def _misconfigured(self, alias: str, problem: str) -> JsonResponse:
        """Refuse, and log the problem once per process rather than once per
        request that anyone can send."""
        key = (alias, self.endpoint, problem)
        if key not in _reported:
            _reported.add(key)
            logger.warning(
                "The %r endpoint of task backend %r refuses every request: %s.",
                self.endpoint,
                alias,
                problem.rstrip("."),
            )
        return error(AUTHENTICATION_FAILED, 403)


class RunTasksView(TaskEndpointView):
    """POST run/: process up to ``max_tasks`` due tasks."""

    endpoint = "run"
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> JsonResponse:
        params = Params.parse(request, from_body=True)
        params.only("max_tasks", "queue_name", "backend_name")
        max_tasks = params.integer("max_tasks", 10, 1, MAX_TASKS_LIMIT)
        queue_name = params.string("queue_name")
        backend = params.backend()
        results = process_tasks(
            queue_name=queue_name, backend_name=backend.alias, max_tasks=max_tasks
        )
        return JsonResponse(
            {"processed": len(results), "results": [result_json(r) for r in results]}
        )


class RunOneTaskView(TaskEndpointView):
    """POST run-one/: process the next due task, if any."""

    endpoint = "run_one"
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> JsonResponse:
        params = Params.parse(request, from_body=True)
        params.only("queue_name", "backend_name")
        queue_name = params.string("queue_name")
        backend = params.backend()
        result = process_one_task(queue_name=queue_name, backend_name=backend.alias)
        return JsonResponse(
            {
                "processed": result is not None,
                "result": result_json(result) if result is not None else None,
            }
        )


class TaskStatusView(TaskEndpointView):
    """GET status/: pending count and per-status counts."""

    endpoint = "status"
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> JsonResponse:
        params = Params.parse(request, from_body=False)
        params.only("queue_name", "backend_name")
        queue_name = params.string("queue_name")
        backend = params.backend()
        stats = get_queue_stats(queue_name=queue_name, backend_name=backend.alias)
        oldest = stats["oldest_pending_since"]
        stats["oldest_pending_since"] = oldest.isoformat() if oldest else None
        # Pending means READY, delayed tasks included: get_pending_task_count().
        return JsonResponse({"pending_count": stats["ready"], **stats})


class ExecuteTaskView(TaskEndpointView):
    """POST execute/<id>/: run one task now, for Cloud Tasks and webhooks.

    Answers 2xx when the task ran or no longer needs running, so that a
    caller that retries on errors retries only a task that failed (and only
    with ``fail_on_error=true``).
    """

    endpoint = "execute"
    http_method_names = ["post"]
    body_params = False

    def post(self, request: HttpRequest, task_id: Any) -> JsonResponse:
        params = Params.parse(request, from_body=False)
        params.only("fail_on_error", "allow_retry", "backend_name")
        fail_on_error = params.boolean("fail_on_error", False)
        allow_retry = params.boolean("allow_retry", False)
        backend = params.backend()
        try:
            result = run_task_by_id(
                str(task_id), allow_retry=allow_retry, backend_name=backend.alias
            )
        except TaskResultDoesNotExist:
            return error("Task not found", 404)
        if result is None:
            statuses = "READY or FAILED" if allow_retry else "READY"
            return JsonResponse(
                {"executed": False, "reason": f"Task is not in {statuses} status"}
            )
        failed = result.status == TaskResultStatus.FAILED
        return JsonResponse(
            {"executed": True, "result": result_json(result)},
            status=500 if failed and fail_on_error else 200,
        )


class PurgeCompletedTasksView(TaskEndpointView):
    """GET or POST purge/: delete finished tasks (GET for App Engine cron)."""

    endpoint = "purge"
    http_method_names = ["get", "post"]
    get_changes_data = True

    def get(self, request: HttpRequest) -> JsonResponse:
        return self.purge(Params.parse(request, from_body=False))

    def post(self, request: HttpRequest) -> JsonResponse:
        return self.purge(Params.parse(request, from_body=True))

    def purge(self, params: Params) -> JsonResponse:
        params.only("days", "status", "batch_size", "dry_run", "backend_name")
        days = params.integer("days", 0, 0, MAX_DAYS)
        batch_size = params.integer("batch_size", 1000, 1, MAX_BATCH_SIZE)
        dry_run = params.boolean("dry_run", False)
        statuses = params.data.get("status", ",".join(DEFAULT_PURGE_STATUSES))
        if not (
            isinstance(statuses, str)
            or (
                isinstance(statuses, list)
                and all(isinstance(status, str) for status in statuses)
            )
        ):
            raise BadRequest(
                'status must be a comma-separated string such as "SUCCESSFUL,FAILED" '
                f"or a list of such names, not {shown(statuses)}."
            )
        try:
            statuses = parse_statuses(statuses)
        except ValueError as e:
            raise BadRequest(f"Invalid status: {e}") from None
        backend = params.backend()
        count = purge_completed_tasks(
            days=days,
            statuses=statuses,
            batch_size=batch_size,
            dry_run=dry_run,
            backend_name=backend.alias,
        )
        if dry_run:
            return JsonResponse({"count": count, "dry_run": True})
        return JsonResponse({"deleted": count, "dry_run": False})
