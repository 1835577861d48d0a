"""Strict JSON checking of task arguments and return values.

Arguments are checked before the row is written, so a value that JSON would
silently change (a datetime, a set, a non-string dict key) is refused at
enqueue time with the place it sits and how to fix it, instead of failing in
the worker hours later.
"""

import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

_HINTS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    ((datetime, date, time), "convert it to an ISO string with value.isoformat()"),
    (UUID, "convert it to a string with str(value)"),
    (Decimal, "convert it to a float or a string"),
    ((set, frozenset), "convert it to a list"),
)


def _type_name(value: Any) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _hint(value: Any) -> str:
    for kinds, hint in _HINTS:
        if isinstance(value, kinds):
            return hint
    return (
        "serialise it to JSON-compatible types (str, int, float, bool, None, "
        "list, dict) yourself"
    )


_NOT_PLAIN = object()


def _plain(value: Any) -> Any:
    """``value`` as ``to_json`` returns it when it is built only of the exact
    JSON types (finite floats, tuples as lists), else ``_NOT_PLAIN``. The
    common case, without the bookkeeping that names where a value failed:
    enqueueing calls it once per task, ``bulk_enqueue`` thousands of times."""
    kind = type(value)
    if kind is int or kind is str or value is None or kind is bool:
        return value
    if kind is float:
        return value if math.isfinite(value) else _NOT_PLAIN
    if kind is list or kind is tuple:
        items = []
        for item in value:
            item = _plain(item)
            if item is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(item)
        return items
    if kind is dict:
        converted = {}
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_PLAIN
            item = _plain(item)
            if item is _NOT_PLAIN:
                return _NOT_PLAIN
            converted[key] = item
        return converted
    return _NOT_PLAIN


def to_json(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON types, or raise naming ``where`` it failed.

    Tuples become lists and UTF-8 bytes become strings, as Django's own
    ``normalize_json`` does, and failures begin with its wording
    (``Unsupported type: ...``, ``Unsupported value: ...``) so that code
    written against Django's backends recognises them; everything else JSON
    cannot carry exactly is a TypeError (a ValueError for NaN and
    infinities).
    """
    plain = _plain(value)
    if plain is not _NOT_PLAIN:
        return plain
    return _checked(value, where)


def _checked(value: Any, where: str) -> Any:
    """``to_json`` for values ``_plain`` refused: converts what it can,
    otherwise says where and why it failed."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                f"{where} is {value!r}, which JSON cannot represent; "
                "use None or a string instead."
            )
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise TypeError(
                f"Unsupported value: {type(value)} in {where}: bytes that are "
                "not valid UTF-8; encode binary data as text first, e.g. with "
                "base64.b64encode(value).decode()."
            ) from None
    if isinstance(value, (list, tuple)):
        return [_checked(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        converted = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has the key {key!r} of type {_type_name(key)}; "
                    "JSON object keys must be strings, convert it with str(key)."
                )
            converted[key] = _checked(item, f"{where}[{key!r}]")
        return converted
    raise TypeError(
        f"Unsupported type: {type(value)} in {where}: task arguments and "
        f"return values must be JSON-serialisable; {_hint(value)}."
    )


def parse_untrusted_json(data: str | bytes) -> Any:
    """``json.loads`` for text from outside (request bodies, tokens): any
    failure, too deep a nesting included, is a ValueError saying why."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    except ValueError as e:
        raise ValueError(str(e)) from None


def check_text(value: str, where: str) -> str:
    """Refuse text that no database can store or compare: NUL characters
    (PostgreSQL rejects them) and lone surrogates (not encodable as UTF-8)."""
    if "\x00" in value:
        raise ValueError(f"{where} contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{where} contains a lone surrogate, which is not valid Unicode text."
        ) from None
    return value


def option_names(values: Iterable[str], where: str) -> list[str]:
    """Names from an option given several times, each perhaps a
    comma-separated list (``--queue emails,sms --queue default``), checked
    with ``check_text``."""
    names = [name.strip() for value in values for name in value.split(",")]
    return [check_text(name, where) for name in names if name]
