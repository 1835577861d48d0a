"""Storing what the executor decided, then announcing it.

``store_all`` only writes: one UPDATE per final status for a whole batch of
outcomes, all in one transaction (one round trip per status, one commit). It
raises when the database cannot be reached, so the caller can keep the
outcomes and write them later. ``announce`` sends ``task_finished`` once the
outcome is durable.
"""

import logging
from collections.abc import Callable
from dataclasses import asdict

from django.db import connections, transaction
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished

from ..models import DatabaseTask
from ..sql import dialect_for
from .executor import Outcome
from .transient import tolerate

logger = logging.getLogger(__name__)

_FIELDS = {field.column: field for field in DatabaseTask._meta.concrete_fields}


def store_all(
    outcomes: list[Outcome],
    *,
    using: str,
    then: Callable[[], object] | None = None,
) -> list[TaskResult]:
    """Write the outcomes, each guarded by ``status = RUNNING`` and the
    worker that holds the task, so that a task rescued or requeued meanwhile
    is not overwritten; return the updated results. ``then`` writes more in
    the same transaction. All are written or, on an error, none; writing
    them twice is harmless."""

    def write() -> list[TaskResult]:
        with transaction.atomic(using=using):
            for group in _groups(outcomes).values():
                _write_group(group, using)
            if then is not None:
                then()
        return [_result(outcome) for outcome in outcomes]

    return tolerate(write, using=using)


def store(outcome: Outcome, *, using: str) -> TaskResult:
    return store_all([outcome], using=using)[0]


def _groups(outcomes: list[Outcome]) -> dict[tuple, list[Outcome]]:
    groups: dict[tuple, list[Outcome]] = {}
    for outcome in outcomes:
        key = (outcome.status, outcome.row.worker_id)
        groups.setdefault(key, []).append(outcome)
    return groups


def _write_group(group: list[Outcome], using: str) -> None:
    """One statement for the group; if some task is no longer held, the
    group is written again task by task, so that each such task is named."""
    try:
        with transaction.atomic(using=using):
            if _update(group, using) != len(group):
                raise _NotAllHeld
    except _NotAllHeld:
        for outcome in group:
            if not _update([outcome], using):
                logger.warning(
                    "Task id=%s was no longer held by worker %s when it finished; "
                    "its %s outcome was not stored.",
                    outcome.result.id,
                    outcome.row.worker_id,
                    outcome.status,
                )


def _update(group: list[Outcome], using: str) -> int:
    connection = connections[using]
    first = group[0]
    values: dict[str, list] = {"finished_at": [o.finished_at for o in group]}
    if first.status == TaskResultStatus.SUCCESSFUL:
        values["return_value"] = [o.return_value for o in group]
    else:
        values["return_value"] = [None] * len(group)
        values["errors"] = [[asdict(e) for e in _errors(o)] for o in group]
    if first.status == TaskResultStatus.READY:
        values["due_at"] = [o.retry_at for o in group]
    statement = dialect_for(connection).finish_statement(
        ids=[_FIELDS["id"].get_db_prep_value(o.row.pk, connection) for o in group],
        status=first.status,
        worker_id=first.row.worker_id,
        values={
            column: [
                _FIELDS[column].get_db_prep_save(v, connection) for v in column_values
            ]
            for column, column_values in values.items()
        },
    )
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        return cursor.rowcount


def _errors(outcome: Outcome) -> list[TaskError]:
    """From the row as claimed, not the result: a batch written again after
    an error must not add the error twice."""
    errors = [TaskError(**error) for error in outcome.row.errors]
    if outcome.error is not None:
        errors.append(outcome.error)
    return errors


def _result(outcome: Outcome) -> TaskResult:
    result = outcome.result
    object.__setattr__(result, "status", outcome.status)
    object.__setattr__(result, "finished_at", outcome.finished_at)
    object.__setattr__(result, "errors", _errors(outcome))
    object.__setattr__(result, "_return_value", outcome.return_value)
    return result


class _NotAllHeld(Exception):
    """Rolls back a group's statement to write it task by task."""


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
