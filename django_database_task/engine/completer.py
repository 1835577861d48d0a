"""Storing what the executor produced and announcing it."""

import logging
from dataclasses import asdict

from django.tasks import TaskResult, TaskResultStatus
from django.tasks.signals import task_finished
from django.utils import timezone

from ..models import DatabaseTask
from .executor import Outcome
from .transient import tolerate

logger = logging.getLogger(__name__)


def complete(outcome: Outcome, *, using: str, sender: type) -> TaskResult:
    """Write the outcome, guarded by ``status = RUNNING`` so that a task
    requeued meanwhile is not overwritten, then send ``task_finished``."""
    result = outcome.result
    errors = list(result.errors)
    if outcome.error is not None:
        errors.append(outcome.error)
    finished_at = timezone.now()
    running = DatabaseTask.objects.using(using).filter(
        pk=outcome.row.pk, status=TaskResultStatus.RUNNING
    )
    updated = tolerate(
        lambda: running.update(
            status=outcome.status,
            finished_at=finished_at,
            return_value=outcome.return_value,
            errors=[asdict(error) for error in errors],
        ),
        using=using,
    )
    if not updated:
        logger.warning(
            "Task id=%s was no longer RUNNING when it finished; its %s outcome "
            "was not stored.",
            result.id,
            outcome.status,
        )
    object.__setattr__(result, "status", outcome.status)
    object.__setattr__(result, "finished_at", finished_at)
    object.__setattr__(result, "errors", errors)
    object.__setattr__(result, "_return_value", outcome.return_value)
    if outcome.exception is None:
        task_finished.send(sender=sender, task_result=result)
        return result
    # Django sends task_finished while the task's exception is being handled,
    # and receivers (its own logging among them) read sys.exc_info().
    try:
        raise outcome.exception
    except BaseException:
        task_finished.send(sender=sender, task_result=result)
    return result
