"""Per-task options: how many attempts a task gets, when it tries again, and
how long an attempt may run.

On Django 6.1 they are ``@task(...)`` keywords, which Django hands to the
backend's ``task_class``. Backend ``OPTIONS`` give the defaults
(``TASK_DEFAULTS``) and per-path settings (``TASK_OPTIONS``, the way to set
them on Django 6.0). The first of ``@task``, ``TASK_OPTIONS[path]``,
``TASK_DEFAULTS`` and the built-in defaults that sets an option wins.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from django.tasks import Task
from django.utils.module_loading import import_string

NAMES = ("max_attempts", "retry_on", "retry_backoff", "retry_backoff_max", "timeout")


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    """Options resolved for one task path."""

    max_attempts: int = 1
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    retry_backoff: float = 1.0
    retry_backoff_max: float = 3600.0
    # Seconds an attempt may run; None: no limit.
    timeout: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseTaskDefinition(Task):
    """Django's Task with the options ``@task`` may set on Django 6.1;
    None means "not set here"."""

    max_attempts: int | None = None
    retry_on: tuple[type[BaseException], ...] | None = None
    retry_backoff: float | None = None
    retry_backoff_max: float | None = None
    timeout: float | None = None


def _positive_number(name: str, value: Any, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{where}: {name} must be a positive number, not {value!r}.")
    return float(value)


def _exception_classes(value: Any, where: str) -> tuple[type[BaseException], ...]:
    if isinstance(value, str | type):
        value = [value]
    classes = []
    for item in value if isinstance(value, list | tuple) else [value]:
        if isinstance(item, str):
            try:
                item = import_string(item)
            except ImportError as e:
                raise ValueError(f"{where}: retry_on cannot import {e}.") from None
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ValueError(
                f"{where}: retry_on must list exception classes (or their dotted "
                f"paths), not {item!r}."
            )
        classes.append(item)
    return tuple(classes)


def check(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The options in ``values`` (None values left out), validated; a
    ValueError saying what is wrong otherwise."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{where} must be a dict of task options, not {values!r}.")
    unknown = sorted(set(values) - set(NAMES))
    if unknown:
        raise ValueError(
            f"{where} has unknown option(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(NAMES)}."
        )
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name == "max_attempts":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{where}: max_attempts must be a whole number of 1 or more, "
                    f"not {value!r}."
                )
            checked[name] = value
        elif name == "retry_on":
            checked[name] = _exception_classes(value, where)
        else:
            checked[name] = _positive_number(name, value, where)
    return checked


def of_task(task: Task) -> dict[str, Any]:
    """The options a task object itself sets."""
    if not isinstance(task, DatabaseTaskDefinition):
        return {}
    return {
        field.name: getattr(task, field.name)
        for field in fields(TaskOptions)
        if getattr(task, field.name) is not None
    }


class OptionResolver:
    """Resolves options for the task paths of one backend."""

    def __init__(self, backend_options: Mapping[str, Any], alias: str) -> None:
        where = f"TASKS[{alias!r}]['OPTIONS']"
        self.defaults = check(
            backend_options.get("TASK_DEFAULTS", {}), f"{where}['TASK_DEFAULTS']"
        )
        per_path = backend_options.get("TASK_OPTIONS", {})
        if not isinstance(per_path, Mapping):
            raise ValueError(
                f"{where}['TASK_OPTIONS'] must map task paths to dicts of options, "
                f"not {per_path!r}."
            )
        self.per_path = {
            path: check(values, f"{where}['TASK_OPTIONS'][{path!r}]")
            for path, values in per_path.items()
        }

    def resolve(self, task_path: str, task: Task | None = None) -> TaskOptions:
        merged = {
            **self.defaults,
            **self.per_path.get(task_path, {}),
            **(of_task(task) if task is not None else {}),
        }
        return TaskOptions(**merged)
