"""HTTP endpoints that run, count, execute and purge tasks.

For hosts without a worker process or cron (serverless, PaaS). Every answer is
JSON, bad requests included. Mounted one by one the views do no
authentication of their own (wrap them, e.g. in ``staff_member_required``);
the bundled URLconf builds them with ``require_auth=True``, which refuses
every request that the backend's ``AUTH_HANDLERS`` do not accept.
"""

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.db import connections
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
from .auth import get_auth_handlers
from .backends import DatabaseTaskBackend
from .maintenance import (
    DEFAULT_PURGE_STATUSES,
    MAX_BATCH_SIZE,
    parse_statuses,
    purge_completed_tasks,
)

logger = logging.getLogger(__name__)

MAX_TASKS_LIMIT = 100
_INTEGER = re.compile(r"-?[0-9]+")


class BadRequest(Exception):
    """A request parameter is invalid; the message says what is allowed."""


def error(message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def result_json(result: TaskResult) -> dict[str, str]:
    return {
        "id": result.id,
        "status": result.status.value,
        "task_path": result.task.module_path,
    }


class Params:
    """Request parameters from a JSON object or a query string, checked by
    type and range."""

    def __init__(self, data: Mapping[str, Any], *, from_query: bool) -> None:
        self.data = data
        self.from_query = from_query

    @classmethod
    def parse(cls, request: HttpRequest, *, from_body: bool) -> "Params":
        if not from_body:
            data = {}
            for name, values in request.GET.lists():
                if len(values) > 1:
                    raise BadRequest(f"Query parameter {name!r} is repeated.")
                data[name] = values[0]
            return cls(data, from_query=True)
        if request.GET:
            raise BadRequest(
                "This endpoint takes its parameters in a JSON body, not in the "
                f"query string (got {', '.join(sorted(request.GET))})."
            )
        try:
            data = json.loads(request.body or b"{}")
        except ValueError as e:
            raise BadRequest(f"The request body is not valid JSON ({e}).") from None
        if not isinstance(data, dict):
            raise BadRequest(
                "The request body must be a JSON object such as "
                f'{{"max_tasks": 10}}, not a JSON {type(data).__name__}.'
            )
        return cls(data, from_query=False)

    def only(self, *allowed: str) -> "Params":
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            where = "query parameter" if self.from_query else "parameter"
            raise BadRequest(
                f"Unknown {where}(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(allowed)}."
            )
        return self

    def integer(self, name: str, default: int, low: int, high: int | None) -> int:
        value = self.data.get(name, default)
        if self.from_query and isinstance(value, str) and _INTEGER.fullmatch(value):
            value = int(value)
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{name} must be an integer {bounds}, not {value!r}.")
        if value < low or (high is not None and value > high):
            raise BadRequest(f"{name} must be an integer {bounds}, not {value}.")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if self.from_query and isinstance(value, str):
            if value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise BadRequest(f'{name} must be "true" or "false", not {value!r}.')
        if not isinstance(value, bool):
            raise BadRequest(f"{name} must be true or false, not {value!r}.")
        return value

    def string(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{name} must be a string or null, not {value!r}.")
        return value or None

    def backend(self) -> DatabaseTaskBackend:
        name = self.string("backend_name") or DEFAULT_TASK_BACKEND_ALIAS
        try:
            return get_backend(name)
        except InvalidTaskBackend as e:
            raise BadRequest(f"Invalid backend_name: {e}") from None


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


@method_decorator(csrf_exempt, name="dispatch")
class TaskEndpointView(View):
    """JSON answers for every outcome, and the optional authentication."""

    endpoint: ClassVar[str]
    # Whether POST parameters come in a JSON body (else: the query string).
    body_params: ClassVar[bool] = True
    require_auth = False

    @classmethod
    def as_view(cls, **initkwargs: Any):
        view = super().as_view(**initkwargs)
        # Tasks commit their own claims and results: never wrap them in the
        # request transaction of ATOMIC_REQUESTS.
        view._non_atomic_requests = set(connections.settings)
        return view

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any):
        try:
            request.body  # noqa: B018 - read now, so that the size limit answers here
        except RequestDataTooBig as e:
            return error(f"The request body is too large ({e}).", 413)
        if self.require_auth:
            refusal = self.refusal(request)
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

    def refusal(self, request: HttpRequest) -> JsonResponse | None:
        """None when a handler of the named backend accepts the request."""
        if self.body_params and request.method == "POST":
            try:
                data = json.loads(request.body or b"{}")
            except ValueError:
                data = None
        else:
            data = request.GET
        alias = _auth_backend_name(data)
        try:
            handlers = get_auth_handlers(get_backend(alias))
        except (ImproperlyConfigured, InvalidTaskBackend):
            logger.exception("Task endpoint authentication is misconfigured.")
            return error(
                f"Authentication of task backend {alias!r} is misconfigured; "
                "the server log and `manage.py check` say why.",
                403,
            )
        handlers = [bound for bound in handlers if bound.applies_to(self.endpoint)]
        if not handlers:
            return error(
                f"No authentication is configured for the {self.endpoint!r} "
                f"endpoint of task backend {alias!r}, so it refuses every request. "
                f"Add OPTIONS['AUTH_HANDLERS'] to TASKS[{alias!r}], e.g. "
                "[{'HANDLER': 'django_database_task.auth.BearerTokenAuth', "
                "'OPTIONS': {'SETTING': 'TASK_API_TOKEN'}}]; see the README "
                "section on securing the endpoints.",
                403,
            )
        for bound in handlers:
            try:
                if bound.handler.authenticate(request):
                    return None
            except Exception:
                # Fail closed, but leave a trace: a crash is not a refusal.
                logger.exception("Auth handler %r failed.", bound.handler)
        return error(
            f"Authentication failed: no handler configured for the "
            f"{self.endpoint!r} endpoint of task backend {alias!r} accepted "
            "these credentials.",
            403,
        )


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

    def get(self, request: HttpRequest) -> JsonResponse:
        return self.purge(Params.parse(request, from_body=False))

    def post(self, request: HttpRequest) -> JsonResponse:
        return self.purge(Params.parse(request, from_body=True))

    def purge(self, params: Params) -> JsonResponse:
        params.only("days", "status", "batch_size", "dry_run", "backend_name")
        days = params.integer("days", 0, 0, None)
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
                f"or a list of such names, not {statuses!r}."
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
