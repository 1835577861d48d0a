"""Claiming: moving READY tasks to RUNNING so that exactly one worker runs each.

Every claim is guarded by ``status = 'READY'`` in the UPDATE itself, so even a
lost lock can never hand one task to two workers.
"""

from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime

from django.db import connections, transaction
from django.utils import timezone

from ..models import DatabaseTask
from ..sql import Dialect, dialect_for


@contextmanager
def _claim_transaction(using: str, dialect: Dialect):
    """The transaction a claim needs: none for PostgreSQL's single statement,
    one around MySQL's SELECT and UPDATE, and on SQLite ``BEGIN IMMEDIATE``,
    which takes the write lock up front so that claims from several processes
    queue up instead of failing to upgrade a read lock."""
    connection = connections[using]
    if dialect.claim_returns_claimed and not dialect.begin_immediate:
        yield
    elif not dialect.begin_immediate or connection.in_atomic_block:
        with transaction.atomic(using=using):
            yield
    else:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")


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
    dialect = dialect_for(connection)
    db_now = connection.ops.adapt_datetimefield_value(now or timezone.now())
    claim, params = dialect.claim_statement(
        backend_name=backend_name,
        now=db_now,
        worker_id=worker_id,
        queue_names=queue_names,
        limit=limit,
    )
    with _claim_transaction(using, dialect):
        if dialect.claim_returns_claimed:
            rows = list(DatabaseTask.objects.using(using).raw(claim, params))
        else:
            with connection.cursor() as cursor:
                cursor.execute(claim, params)
                ids = [row[0] for row in cursor.fetchall()]
                if ids:
                    cursor.execute(
                        *dialect.mark_claimed_statement(
                            now=db_now, worker_id=worker_id, ids=ids
                        )
                    )
            rows = _load(using, ids)
    return sorted(rows, key=_claim_order)


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
    dialect = dialect_for(connection)
    statement = dialect.claim_by_id_statement(
        now=connection.ops.adapt_datetimefield_value(timezone.now()),
        worker_id=worker_id,
        task_id=DatabaseTask._meta.pk.get_db_prep_value(task_id, connection),
        backend_name=backend_name,
        allow_retry=allow_retry,
    )
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        claimed = cursor.rowcount == 1
    return _load(using, [task_id])[0] if claimed else None


def _load(using: str, ids: list) -> list[DatabaseTask]:
    return list(DatabaseTask.objects.using(using).in_bulk(ids).values()) if ids else []


def _claim_order(row: DatabaseTask) -> tuple:
    """RETURNING and IN (...) do not keep the claim's order: restore it."""
    return (-row.priority, row.due_at)
