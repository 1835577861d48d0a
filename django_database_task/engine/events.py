"""One log record per task start and finish, on the ``django_database_task.tasks``
logger, with stable attributes a formatter (``log.JSONFormatter``) or a log
pipeline can index: ``task_id``, ``task_path``, ``queue``, ``backend``,
``attempt``, ``status``, ``duration`` (seconds, on finish) and ``worker_id``.

Levels: a start is DEBUG, a success INFO, an attempt that will run again
WARNING, a failure ERROR (with the exception, as Django's own record has it).
"""

import logging

from django.tasks import TaskResult, TaskResultStatus
from django.utils import timezone

logger = logging.getLogger("django_database_task.tasks")

LEVELS = {
    TaskResultStatus.SUCCESSFUL: logging.INFO,
    TaskResultStatus.READY: logging.WARNING,
    TaskResultStatus.FAILED: logging.ERROR,
}


def _attributes(result: TaskResult, worker_id: str) -> dict:
    return {
        "task_id": result.id,
        "task_path": result.task.module_path,
        "queue": result.task.queue_name,
        "backend": result.backend,
        "attempt": result.attempts,
        "status": str(result.status),
        "worker_id": worker_id,
    }


def started(result: TaskResult, worker_id: str) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "STARTED %s %s",
            result.id,
            result.task.module_path,
            extra=_attributes(result, worker_id),
        )


def finished(
    result: TaskResult, worker_id: str, exception: BaseException | None
) -> None:
    level = LEVELS.get(result.status, logging.INFO)
    if not logger.isEnabledFor(level):
        return
    duration = None
    if result.last_attempted_at:
        end = result.finished_at or timezone.now()
        duration = round((end - result.last_attempted_at).total_seconds(), 6)
    logger.log(
        level,
        "%s %s %s",
        result.status,
        result.id,
        result.task.module_path,
        extra=_attributes(result, worker_id) | {"duration": duration},
        exc_info=exception if level >= logging.ERROR else None,
    )
