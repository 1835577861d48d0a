"""Running one claimed task, the way Django's ImmediateBackend runs it.

Any exception but KeyboardInterrupt fails the task, one raised while its
module is imported included; a return value that is not JSON fails it too.
The outcome is left for the completer to store.
"""

from dataclasses import dataclass
from traceback import format_exception
from typing import TYPE_CHECKING

from django.tasks import TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_started

from ..models import DatabaseTask
from ..results import load_task, to_task_result
from ..validation import to_json

if TYPE_CHECKING:
    from ..backends import DatabaseTaskBackend


@dataclass
class Outcome:
    row: DatabaseTask
    result: TaskResult
    status: TaskResultStatus
    return_value: object = None
    error: TaskError | None = None
    # Kept so that task_finished can be sent while it is being handled.
    exception: BaseException | None = None


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
        return Outcome(
            row, result, TaskResultStatus.FAILED, error=error_from(e), exception=e
        )
    return Outcome(row, result, TaskResultStatus.SUCCESSFUL, return_value=return_value)
