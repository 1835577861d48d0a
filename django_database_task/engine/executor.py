"""Running one claimed task, the way Django's ImmediateBackend runs it, and
deciding its outcome.

Any exception but KeyboardInterrupt fails the attempt, one raised while the
task's module is imported included; a return value that is not JSON fails it
too. A failed attempt is tried again later when the task's retry options say
so (``retry_policy``). The completer only stores the outcome.
"""

from dataclasses import dataclass
from datetime import datetime
from traceback import format_exception
from typing import TYPE_CHECKING

from django.tasks import TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_started
from django.utils import timezone

from ..models import DatabaseTask
from ..results import TaskNotImportable, load_task, to_task_result
from ..validation import to_json
from .retry_policy import next_attempt_at

if TYPE_CHECKING:
    from ..backends import DatabaseTaskBackend


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


def error_from(exception: BaseException) -> TaskError:
    kind = type(exception)
    return TaskError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
        traceback="".join(format_exception(exception)),
    )


def execute(row: DatabaseTask, backend: "DatabaseTaskBackend") -> Outcome:
    """Run the RUNNING task ``row`` of ``backend``, whose class signals are
    sent from."""
    task = load_task(row, backend.allowed_task_modules)
    result = to_task_result(row, task)
    task_started.send(sender=type(backend), task_result=result)
    try:
        if task.takes_context:
            raw = task.call(TaskContext(task_result=result), *row.args, **row.kwargs)
        else:
            raw = task.call(*row.args, **row.kwargs)
        return_value = to_json(raw, "the task's return value")
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        retry_at = _retry_at(row, backend, task, e)
        return Outcome(
            row,
            result,
            TaskResultStatus.FAILED if retry_at is None else TaskResultStatus.READY,
            error=error_from(e),
            exception=e,
            retry_at=retry_at,
        )
    return Outcome(row, result, TaskResultStatus.SUCCESSFUL, return_value=return_value)


def _retry_at(
    row: DatabaseTask, backend: "DatabaseTaskBackend", task, error: BaseException
) -> datetime | None:
    """When to try a failed attempt again; None to fail the task. A task
    that cannot be loaded would only fail the same way again."""
    if isinstance(error, TaskNotImportable):
        return None
    retry_on = backend.task_options.resolve(row.task_path, task).retry_on
    if not isinstance(error, retry_on):
        return None
    return next_attempt_at(
        attempts_used=len(row.worker_ids),
        max_attempts=row.max_attempts,
        retry_backoff=row.retry_backoff,
        retry_backoff_max=row.retry_backoff_max,
        now=timezone.now(),
    )
