"""Request parameters of the HTTP endpoints, from a JSON body or a query
string, checked by type and range before anything reaches the database."""

import re
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS
from django.tasks.exceptions import InvalidTaskBackend

from .api import get_backend
from .backends import DatabaseTaskBackend
from .validation import check_text, parse_untrusted_json

# Every bound checked here has far fewer digits; longer strings are refused
# before int(), which raises past 4,300 digits and is slow well before.
MAX_DIGITS = 18
_INTEGER = re.compile(rf"-?[0-9]{{1,{MAX_DIGITS}}}")


class BadRequest(Exception):
    """A request parameter is invalid; the message says what is allowed."""


def shown(value: Any) -> str:
    """The repr of a value, cut short: error messages echo what was sent."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def parse_body(request: HttpRequest) -> Any:
    """The JSON of the request body (``{}`` when empty); ValueError saying
    why for anything else, too deep a nesting included."""
    return parse_untrusted_json(request.body or b"{}")


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
            data = parse_body(request)
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
                f"Unknown {where}(s) {', '.join(map(shown, unknown))}; "
                f"allowed: {', '.join(allowed)}."
            )
        return self

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.data.get(name, default)
        if self.from_query and isinstance(value, str) and _INTEGER.fullmatch(value):
            value = int(value)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (low <= value <= high)
        ):
            raise BadRequest(
                f"{name} must be an integer from {low} to {high}, not {shown(value)}."
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if self.from_query and isinstance(value, str):
            if value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise BadRequest(f'{name} must be "true" or "false", not {shown(value)}.')
        if not isinstance(value, bool):
            raise BadRequest(f"{name} must be true or false, not {shown(value)}.")
        return value

    def string(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{name} must be a string or null, not {shown(value)}.")
        if value:
            try:
                check_text(value, name)
            except ValueError as e:
                raise BadRequest(str(e)) from None
        return value or None

    def backend(self) -> DatabaseTaskBackend:
        name = self.string("backend_name") or DEFAULT_TASK_BACKEND_ALIAS
        try:
            return get_backend(name)
        except InvalidTaskBackend as e:
            raise BadRequest(f"Invalid backend_name: {e}") from None
