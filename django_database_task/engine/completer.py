"""Storing what the executor decided, then announcing it.

``store`` only writes; it raises when the database cannot be reached, so the
caller can keep the outcome and write it later. ``announce`` sends
``task_finished`` once the outcome is durable.
"""

import logging
from dataclasses import asdict

from django.db import transaction
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished
from django.utils import timezone

from ..models import DatabaseTask
from .executor import Outcome
from .transient import tolerate

logger = logging.getLogger(__name__)


def store_all(outcomes: list[Outcome], *, using: str) -> list[TaskResult]:
    """Write several outcomes in one transaction: one commit (one disk flush)
    for all of them. All are written or, on an error, none."""
    if len(outcomes) == 1:
        return [store(outcomes[0], using=using)]

    def write() -> list[TaskResult]:
        with transaction.atomic(using=using):
            return [_write(outcome, using) for outcome in outcomes]

    return tolerate(write, using=using)


def store(outcome: Outcome, *, using: str) -> TaskResult:
    """Write the outcome, guarded by ``status = RUNNING`` and the worker that
    holds the task, so that a task rescued or requeued meanwhile is not
    overwritten; return the updated result. Writing it twice is harmless."""
    return tolerate(lambda: _write(outcome, using), using=using)


def _write(outcome: Outcome, using: str) -> TaskResult:
    result = outcome.result
    # From the row as claimed, not the result: a batch written again after an
    # error must not add the error twice.
    errors = [TaskError(**error) for error in outcome.row.errors]
    if outcome.error is not None:
        errors.append(outcome.error)
    finished_at = None if outcome.retry_at else timezone.now()
    values = {
        "status": outcome.status,
        "finished_at": finished_at,
        "return_value": outcome.return_value,
        "errors": [asdict(error) for error in errors],
        "worker_id": "",
    }
    if outcome.retry_at is not None:
        values["due_at"] = outcome.retry_at
    held = DatabaseTask.objects.using(using).filter(
        pk=outcome.row.pk,
        status=TaskResultStatus.RUNNING,
        worker_id=outcome.row.worker_id,
    )
    if not held.update(**values):
        logger.warning(
            "Task id=%s was no longer held by worker %s when it finished; its %s "
            "outcome was not stored.",
            result.id,
            outcome.row.worker_id,
            outcome.status,
        )
    object.__setattr__(result, "status", outcome.status)
    object.__setattr__(result, "finished_at", finished_at)
    object.__setattr__(result, "errors", errors)
    object.__setattr__(result, "_return_value", outcome.return_value)
    return result


def announce(outcome: Outcome, *, sender: type) -> None:
    """Send ``task_finished`` for a stored outcome. As Django does, a failure
    is announced while its exception is being handled: receivers (Django's
    own logging among them) read ``sys.exc_info()``."""
    if outcome.exception is None:
        task_finished.send(sender=sender, task_result=outcome.result)
        return
    try:
        raise outcome.exception
    except BaseException:
        task_finished.send(sender=sender, task_result=outcome.result)
