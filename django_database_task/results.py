"""Turning stored rows back into Django's ``Task`` and ``TaskResult``."""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.exceptions import InvalidTask
from django.utils.module_loading import import_string

from .models import DatabaseTask


class TaskNotImportable(Exception):
    """The stored task path no longer names an importable Task."""


class TaskNotAllowed(TaskNotImportable):
    """The stored task path is outside the backend's ALLOWED_TASK_MODULES."""


def import_task(task_path: str) -> Task:
    try:
        task = import_string(task_path)
    except ImportError as e:
        raise TaskNotImportable(
            f"Task path {task_path!r} could not be imported ({e}). Was the task "
            "renamed or removed after it was enqueued?"
        ) from e
    except Exception as e:
        # A module that fails as it is imported (a broken deploy): the task
        # fails with the real error instead of taking the worker down.
        raise TaskNotImportable(
            f"Importing task path {task_path!r} raised "
            f"{type(e).__module__}.{type(e).__qualname__}: {e}"
        ) from e
    if not isinstance(task, Task):
        raise TaskNotImportable(
            f"Task path {task_path!r} names a {type(task).__name__}, not a Task. "
            "Decorate the function with @task."
        )
    return task


def _unavailable() -> None:
    """The function of every UnavailableTask; never called."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnavailableTask(Task):
    """Stands in for a stored task that can no longer be loaded, so that its
    result can still be reported and, when run, failed with the reason."""

    path: str
    error: TaskNotImportable
    func: object = _unavailable

    def __post_init__(self):
        # Nothing to validate: this task is never enqueued, only failed.
        pass

    @property
    def module_path(self) -> str:
        return self.path

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    def call(self, *args, **kwargs):
        raise self.error

    async def acall(self, *args, **kwargs):
        raise self.error


def is_allowed(task_path: str, allowed_modules: Sequence[str] | None) -> bool:
    """Whether ``task_path`` lies in one of the modules (or packages) listed;
    None allows every path."""
    return allowed_modules is None or any(
        task_path.startswith(f"{module}.") for module in allowed_modules
    )


def load_task(row: DatabaseTask, allowed_modules: Sequence[str] | None = None) -> Task:
    """The Task the row was enqueued as, with its stored options, or an
    UnavailableTask saying why it cannot be loaded any more. A path outside
    ``allowed_modules`` is never imported."""
    try:
        if not is_allowed(row.task_path, allowed_modules):
            raise TaskNotAllowed(
                f"Task path {row.task_path!r} is not in a module listed in "
                "OPTIONS['ALLOWED_TASK_MODULES'], so it was not imported."
            )
        return _task_as_enqueued(
            row.task_path, row.priority, row.queue_name, row.backend_name, row.run_after
        )
    except (TaskNotImportable, InvalidTask) as e:
        error = e if isinstance(e, TaskNotImportable) else TaskNotImportable(str(e))
        return UnavailableTask(
            path=row.task_path,
            error=error,
            priority=row.priority,
            queue_name=row.queue_name,
            backend=row.backend_name,
            run_after=row.run_after,
        )


@lru_cache(maxsize=256)
def _task_as_enqueued(
    task_path: str,
    priority: int,
    queue_name: str,
    backend: str,
    run_after: datetime | None,
) -> Task:
    """A worker loads the same few tasks over and over: build each once.
    Failures are not cached, so a task fixed by a deploy loads again."""
    return replace(
        import_task(task_path),
        priority=priority,
        queue_name=queue_name,
        backend=backend,
        run_after=run_after,
    )


def to_task_result(row: DatabaseTask, task: Task) -> TaskResult:
    result = TaskResult(
        task=task,
        id=str(row.id),
        status=TaskResultStatus(row.status),
        enqueued_at=row.enqueued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        last_attempted_at=row.last_attempted_at,
        args=row.args,
        kwargs=row.kwargs,
        backend=row.backend_name,
        errors=[TaskError(**error) for error in row.errors],
        worker_ids=list(row.worker_ids),
    )
    object.__setattr__(result, "_return_value", row.return_value)
    return result
