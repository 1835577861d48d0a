"""Running one claimed task, the way Django's ImmediateBackend runs it, and
deciding its outcome.

Any exception but KeyboardInterrupt fails the attempt, one raised while the
task's module is imported included; a return value that is not JSON fails it
too, and so does running past the task's ``timeout``. A failed attempt is
tried again later when the task's retry options say so (``retry_policy``).
The completer only stores the outcome.

An attempt is ``start``-ed (task loaded, ``task_started`` sent), then run by
``run`` in a thread, or ``arun`` on an event loop for async task functions.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime
from inspect import iscoroutinefunction
from traceback import format_exception
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_started
from django.utils import timezone

from ..models import DatabaseTask
from ..options import TaskOptions
from ..results import TaskNotImportable, UnavailableTask, load_task, to_task_result
from ..validation import to_json
from . import isolation
from .retry_policy import next_attempt_at

if TYPE_CHECKING:
    from ..backends import DatabaseTaskBackend


class TaskTimeout(Exception):
    """The task ran longer than its ``timeout``."""


@dataclass
class Outcome:
    """SUCCESSFUL, FAILED, or READY again at ``retry_at``."""

    row: DatabaseTask
    result: TaskResult
    status: TaskResultStatus
    return_value: object = None
    error: TaskError | None = None
    # Kept so that task_finished can be sent while it is being handled.
    exception: BaseException | None = None
    retry_at: datetime | None = None
    # When the attempt ended; None for one that runs again.
    finished_at: datetime | None = None
    # How long the attempt ran (measured where it ran).
    seconds: float = 0.0


@dataclass
class Attempt:
    """A claimed task, loaded and announced, about to run."""

    row: DatabaseTask
    backend: "DatabaseTaskBackend"
    task: Task
    result: TaskResult
    options: TaskOptions

    @property
    def is_async(self) -> bool:
        return not isinstance(self.task, UnavailableTask) and iscoroutinefunction(
            self.task.func
        )

    def arguments(self) -> tuple[tuple, dict[str, Any]]:
        return call_arguments(self.task, self.row, self.result)


def call_arguments(
    task: Task, row: DatabaseTask, result: TaskResult
) -> tuple[tuple, dict[str, Any]]:
    """The stored arguments, behind the context for a task that takes it."""
    args = tuple(row.args)
    if task.takes_context:
        args = (TaskContext(task_result=result), *args)
    return args, row.kwargs


def error_from(exception: BaseException) -> TaskError:
    kind = type(exception)
    return TaskError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
        traceback="".join(format_exception(exception)),
    )


def start(row: DatabaseTask, backend: "DatabaseTaskBackend") -> Attempt:
    """Load the RUNNING task ``row`` of ``backend`` and send ``task_started``
    (from the backend's class, as Django does)."""
    task = load_task(row, backend.allowed_task_modules)
    result = to_task_result(row, task)
    options = backend.task_options.resolve(row.task_path, task)
    task_started.send(sender=type(backend), task_result=result)
    return Attempt(row, backend, task, result, options)


def execute(row: DatabaseTask, backend: "DatabaseTaskBackend") -> Outcome:
    """Start and run a task in this thread, whatever its kind."""
    return run(start(row, backend))


def run(attempt: Attempt) -> Outcome:
    """Run the attempt in this thread: an async task on an event loop of its
    own, a sync task with a timeout in a child process that is killed when
    the timeout passes."""
    if attempt.is_async:
        return async_to_sync(arun)(attempt)
    timeout = attempt.options.timeout
    args, kwargs = attempt.arguments()
    try:
        if timeout is None:
            raw = attempt.task.call(*args, **kwargs)
        else:
            raw = isolation.call(
                str(attempt.row.pk),
                database=attempt.backend.database,
                allowed_modules=attempt.backend.allowed_task_modules,
                timeout=timeout,
            )
        return_value = to_json(raw, "the task's return value")
    except KeyboardInterrupt:
        raise
    except isolation.Failed as failed:
        return conclude(attempt, failed.exception, failed.error)
    except isolation.TimedOut as timed_out:
        return conclude(attempt, TaskTimeout(str(timed_out)))
    except BaseException as e:
        return conclude(attempt, e)
    return conclude(attempt, return_value=return_value)


async def arun(attempt: Attempt) -> Outcome:
    """Run an async task on the running event loop, cancelled at its timeout."""
    args, kwargs = attempt.arguments()
    timeout = attempt.options.timeout
    try:
        raw = await asyncio.wait_for(attempt.task.acall(*args, **kwargs), timeout)
        return_value = to_json(raw, "the task's return value")
    except KeyboardInterrupt:
        raise
    except TimeoutError:
        return conclude(
            attempt,
            TaskTimeout(f"The task ran longer than its timeout of {timeout:g} s."),
        )
    except BaseException as e:
        return conclude(attempt, e)
    return conclude(attempt, return_value=return_value)


def conclude(
    attempt: Attempt,
    exception: BaseException | None = None,
    error: TaskError | None = None,
    *,
    return_value: object = None,
) -> Outcome:
    """The outcome of an attempt: SUCCESSFUL, or READY again at the retry
    time when the task has attempts left for this error, or FAILED."""
    if exception is None:
        return Outcome(
            attempt.row,
            attempt.result,
            TaskResultStatus.SUCCESSFUL,
            return_value=return_value,
            finished_at=timezone.now(),
        )
    retry_at = _retry_at(attempt, exception)
    return Outcome(
        attempt.row,
        attempt.result,
        TaskResultStatus.FAILED if retry_at is None else TaskResultStatus.READY,
        error=error or error_from(exception),
        exception=exception,
        retry_at=retry_at,
        finished_at=None if retry_at else timezone.now(),
    )


def _retry_at(attempt: Attempt, error: BaseException) -> datetime | None:
    """When to try a failed attempt again; None to fail the task. A task
    that cannot be loaded would only fail the same way again."""
    if isinstance(error, TaskNotImportable):
        return None
    if not isinstance(error, attempt.options.retry_on):
        return None
    row = attempt.row
    return next_attempt_at(
        attempts_used=len(row.worker_ids),
        max_attempts=row.max_attempts,
        retry_backoff=row.retry_backoff,
        retry_backoff_max=row.retry_backoff_max,
        now=timezone.now(),
    )
