"""Claiming: moving READY tasks to RUNNING so that exactly one worker runs each.

Every claim is guarded by ``status = 'READY'`` in the UPDATE itself, so even a
lost lock can never hand one task to two workers. How each database does it
is its dialect's business (``sql``).
"""

from collections.abc import Sequence
from datetime import datetime

from django.db import connections
from django.utils import timezone

from ..models import DatabaseTask
from ..sql import dialect_for

COLUMNS = [field.column for field in DatabaseTask._meta.concrete_fields]
_NAMES = [field.attname for field in DatabaseTask._meta.concrete_fields]


def claim_tasks(
    *,
    using: str,
    backend_name: str,
    worker_id: str,
    queue_names: Sequence[str] = (),
    limit: int = 1,
    now: datetime | None = None,
) -> list[DatabaseTask]:
    """Claim up to ``limit`` due READY tasks, highest priority first, then
    earliest due; return them RUNNING, in claim order."""
    connection = connections[using]
    rows = dialect_for(connection).claim(
        connection,
        columns=COLUMNS,
        backend_name=backend_name,
        now=connection.ops.adapt_datetimefield_value(now or timezone.now()),
        worker_id=worker_id,
        queue_names=queue_names,
        limit=limit,
    )
    converters = _converters(connection)
    tasks = [
        DatabaseTask.from_db(using, _NAMES, _convert(row, converters, connection))
        for row in rows
    ]
    return sorted(tasks, key=_claim_order)


def claim_task_by_id(
    *,
    using: str,
    task_id: str,
    backend_name: str,
    worker_id: str,
    allow_retry: bool = False,
) -> DatabaseTask | None:
    """Claim one task of the backend by id if it is READY (or FAILED and not
    cancelled, with ``allow_retry``), whether or not it is due; None if there
    is no such runnable task. A malformed id raises ValidationError."""
    connection = connections[using]
    statement = dialect_for(connection).claim_by_id_statement(
        now=connection.ops.adapt_datetimefield_value(timezone.now()),
        worker_id=worker_id,
        task_id=DatabaseTask._meta.pk.get_db_prep_value(task_id, connection),
        backend_name=backend_name,
        allow_retry=allow_retry,
    )
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        claimed = cursor.rowcount == 1
    return DatabaseTask.objects.using(using).get(pk=task_id) if claimed else None


def _converters(connection) -> list[tuple]:
    """Per column, what the ORM would apply to a raw value (JSON decoding,
    UUIDs and datetimes stored as text)."""
    table = DatabaseTask._meta.db_table
    per_column = []
    for field in DatabaseTask._meta.concrete_fields:
        column = field.get_col(table)
        functions = connection.ops.get_db_converters(column)
        per_column.append((column, functions + field.get_db_converters(connection)))
    return per_column


def _convert(row: tuple, converters: list[tuple], connection) -> list:
    values = list(row)
    for index, (column, functions) in enumerate(converters):
        for function in functions:
            values[index] = function(values[index], column, connection)
    return values


def _claim_order(row: DatabaseTask) -> tuple:
    """RETURNING and IN (...) do not keep the claim's order: restore it."""
    return (-row.priority, row.due_at)
