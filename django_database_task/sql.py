"""Every vendor-specific SQL statement the queue runs, in one place.

Everything else goes through the ORM. A ``Dialect`` owns what differs between
databases: the claim (its statements and its transaction) that marks rows
RUNNING and appends the worker id to the JSON ``worker_ids`` list, the claim
by id, the claim indexes, and PostgreSQL's NOTIFY/LISTEN wake-up. At the end,
the expressions the ORM lacks: JSON, and a status re-check no index serves.

``'READY'`` is written as a literal rather than a parameter so that the
planner matches it against the partial indexes' ``WHERE status = 'READY'``.
"""

import re
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F, Func, IntegerField, JSONField, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact

TABLE = "django_database_task"

Statement = tuple[str, list]


class Dialect:
    """The statements one vendor runs, and how its claim is transacted."""

    # Expression appending a parameter to the JSON array in worker_ids.
    append_worker_id: str
    create_indexes: tuple[str, ...] = ()
    drop_indexes: tuple[str, ...] = ()
    # SQLite rebuilds the table for most schema changes, which drops the
    # indexes created here: migrations that change the table run these after.
    restore_indexes: tuple[str, ...] = ()

    def claim(
        self,
        connection,
        *,
        columns: Sequence[str],
        backend_name: str,
        now,
        worker_id: str,
        queue_names: Sequence[str],
        limit: int,
    ) -> list[tuple]:
        """Mark up to ``limit`` due READY tasks RUNNING for ``worker_id``,
        highest priority first, then earliest due; return their ``columns``."""
        raise NotImplementedError

    def _mark(self, now, worker_id: str) -> Statement:
        return (
            "status = 'RUNNING', started_at = COALESCE(started_at, %s), "
            f"last_attempted_at = %s, worker_id = %s, "
            f"worker_ids = {self.append_worker_id}",
            [now, now, worker_id, worker_id],
        )

    def _select_claimable(
        self, backend_name: str, now, queue_names: Sequence[str], limit: int
    ) -> Statement:
        queues = ", ".join(["%s"] * len(queue_names))
        return (
            f"SELECT id FROM {TABLE} WHERE backend_name = %s "
            "AND status = 'READY' AND due_at <= %s"
            + (f" AND queue_name IN ({queues})" if queue_names else "")
            + " ORDER BY priority DESC, due_at LIMIT %s",
            [backend_name, now, *queue_names, limit],
        )

    def next_due_statement(
        self, *, backend_name: str, queue_names: Sequence[str], before
    ) -> Statement:
        """The earliest ``due_at`` of the READY tasks due before ``before``:
        an index-only scan of a claim index, which holds these columns."""
        queues = ", ".join(["%s"] * len(queue_names))
        return (
            f"SELECT MIN(due_at) FROM {TABLE} WHERE backend_name = %s "
            "AND status = 'READY' AND due_at < %s"
            + (f" AND queue_name IN ({queues})" if queue_names else ""),
            [backend_name, before, *queue_names],
        )

    def claim_by_id_statement(
        self,
        *,
        now,
        worker_id: str,
        task_id,
        backend_name: str,
        allow_retry: bool,
    ) -> Statement:
        """Marks one task of the backend RUNNING if it is READY or, with
        ``allow_retry``, FAILED and not cancelled. The row is found by id;
        the status is only re-checked, written so that no index matches it
        (see ``status_recheck``)."""
        mark, params = self._mark(now, worker_id)
        runnable = "COALESCE(status, '') = 'READY'"
        if allow_retry:
            runnable = f"({runnable} OR (status = 'FAILED' AND cancelled_at IS NULL))"
        return (
            f"UPDATE {TABLE} SET {mark} WHERE id = %s AND backend_name = %s "
            f"AND {runnable}",
            [*params, task_id, backend_name],
        )


def _partial_claim_indexes() -> tuple[str, ...]:
    return (
        f"CREATE INDEX IF NOT EXISTS ddt_claim_idx ON {TABLE} "
        "(backend_name, priority DESC, due_at) WHERE status = 'READY'",
        f"CREATE INDEX IF NOT EXISTS ddt_claim_queue_idx ON {TABLE} "
        "(backend_name, queue_name, priority DESC, due_at) WHERE status = 'READY'",
    )


_DROP_CLAIM_INDEXES = ("DROP INDEX ddt_claim_idx", "DROP INDEX ddt_claim_queue_idx")
_DROP_CLAIM_INDEXES_IF_EXIST = (
    "DROP INDEX IF EXISTS ddt_claim_idx",
    "DROP INDEX IF EXISTS ddt_claim_queue_idx",
)


def _columns(columns: Sequence[str], table: str = "") -> str:
    prefix = f"{table}." if table else ""
    return ", ".join(f"{prefix}{column}" for column in columns)


class PostgreSQL(Dialect):
    """One statement, in autocommit: no transaction to hold open. The locked
    SELECT sits in ``ARRAY(...)``, an init plan run exactly once (as a plain
    ``IN (subquery)`` the planner may run it again, and with SKIP LOCKED each
    run returns other rows, claiming more than ``limit``); the UPDATE then
    finds the claimed rows by primary key. Its re-check of the status is
    written ``COALESCE(status, '') = 'READY'`` (status is never NULL) so that
    the planner cannot match it to the READY partial indexes: with statistics
    left over from a purged table it would otherwise scan every READY row
    through them, once per claim."""

    append_worker_id = "worker_ids || jsonb_build_array(%s::text)"
    create_indexes = _partial_claim_indexes()
    drop_indexes = _DROP_CLAIM_INDEXES

    def insert_notifying(
        self, insert: Statement, channel: str, queue_name: str
    ) -> Statement:
        """``insert`` (one row) also notifying ``channel``: still one
        statement, so an enqueue in autocommit costs no extra round trip or
        commit. The notification is sent when the transaction commits, never
        on rollback, and PostgreSQL folds identical ones within a
        transaction (savepoints included), so each queue is notified once."""
        sql, params = insert
        return f"{sql} RETURNING pg_notify(%s, %s)", [*params, channel, queue_name]

    def notify_statement(self, channel: str, queue_name: str) -> Statement:
        return "SELECT pg_notify(%s, %s)", [channel, queue_name]

    def listen_statement(self, channel: str) -> str:
        """``channel`` must be a ``channel_name``: quoting is all it needs."""
        return f'LISTEN "{channel}"'

    def claim_statement(
        self, *, columns, backend_name, now, worker_id, queue_names, limit
    ) -> Statement:
        select, select_params = self._select_claimable(
            backend_name, now, queue_names, limit
        )
        mark, mark_params = self._mark(now, worker_id)
        return (
            f"UPDATE {TABLE} SET {mark} "
            f"WHERE id = ANY(ARRAY({select} FOR UPDATE SKIP LOCKED)) "
            f"AND COALESCE(status, '') = 'READY' "
            f"RETURNING {_columns(columns)}",
            mark_params + select_params,
        )

    def claim(self, connection, **claim):
        with connection.cursor() as cursor:
            cursor.execute(*self.claim_statement(**claim))
            return cursor.fetchall()


class SQLite(Dialect):
    """One UPDATE ... RETURNING inside ``BEGIN IMMEDIATE``, which takes the
    write lock up front so that claims from several processes queue up
    instead of failing to upgrade a read lock. SQLite evaluates the
    uncorrelated subquery once."""

    append_worker_id = "json_insert(worker_ids, '$[#]', %s)"
    create_indexes = restore_indexes = _partial_claim_indexes()
    drop_indexes = _DROP_CLAIM_INDEXES_IF_EXIST

    def claim(
        self, connection, *, columns, backend_name, now, worker_id, queue_names, limit
    ):
        select, select_params = self._select_claimable(
            backend_name, now, queue_names, limit
        )
        mark, mark_params = self._mark(now, worker_id)
        statement = (
            f"UPDATE {TABLE} SET {mark} WHERE id IN ({select}) "
            f"AND status = 'READY' RETURNING {_columns(columns)}"
        )
        if connection.in_atomic_block:
            # Inside the caller's transaction (tests, mostly): it holds the lock.
            with connection.cursor() as cursor:
                cursor.execute(statement, mark_params + select_params)
                return cursor.fetchall()
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.execute(statement, mark_params + select_params)
                rows = cursor.fetchall()
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        return rows


class MySQL(Dialect):
    """No UPDATE ... RETURNING: in one transaction, SELECT the ids ... FOR
    UPDATE SKIP LOCKED, mark them, read them back. InnoDB locks every row it
    scans, so the claim indexes lead with the columns the claim filters on,
    in its order."""

    append_worker_id = "JSON_ARRAY_APPEND(worker_ids, '$', %s)"
    create_indexes = (
        f"CREATE INDEX ddt_claim_idx ON {TABLE} "
        "(status, backend_name, priority DESC, due_at)",
        f"CREATE INDEX ddt_claim_queue_idx ON {TABLE} "
        "(status, backend_name, queue_name, priority DESC, due_at)",
    )
    drop_indexes = tuple(f"{drop} ON {TABLE}" for drop in _DROP_CLAIM_INDEXES)

    def claim(
        self, connection, *, columns, backend_name, now, worker_id, queue_names, limit
    ):
        select, params = self._select_claimable(backend_name, now, queue_names, limit)
        mark, mark_params = self._mark(now, worker_id)
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"{select} FOR UPDATE SKIP LOCKED", params)
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return []
            placeholders = ", ".join(["%s"] * len(ids))
            cursor.execute(
                f"UPDATE {TABLE} SET {mark} "
                f"WHERE status = 'READY' AND id IN ({placeholders})",
                mark_params + ids,
            )
            cursor.execute(
                f"SELECT {_columns(columns)} FROM {TABLE} WHERE id IN ({placeholders})",
                ids,
            )
            return cursor.fetchall()


DIALECTS = {"postgresql": PostgreSQL(), "sqlite": SQLite(), "mysql": MySQL()}


def channel_name(backend_alias: str) -> str:
    """The NOTIFY channel of a backend: ``ddt_`` and the alias, in the
    characters of an unquoted identifier, within PostgreSQL's 63 bytes. Two
    aliases that map to one channel only cost each other spurious wake-ups."""
    return ("ddt_" + re.sub(r"[^a-z0-9_]", "_", backend_alias.lower()))[:63]


def dialect_for(connection) -> Dialect:
    try:
        return DIALECTS[connection.vendor]
    except KeyError:
        raise NotImplementedError(
            "django-database-task supports PostgreSQL, MySQL/MariaDB and SQLite, "
            f"not {connection.display_name}."
        ) from None


class JSONArrayLength(Func):
    """Length of a JSON array column, so that "attempts" (the number of
    worker ids) can be sorted on in the database."""

    function = "JSON_ARRAY_LENGTH"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler, connection, function="JSONB_ARRAY_LENGTH", **extra_context
        )

    def as_mysql(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler, connection, function="JSON_LENGTH", **extra_context
        )


class AppendError(Func):
    """``errors`` with one more ``{"exception_class_path", "traceback"}`` entry,
    computed in the UPDATE itself so that a bulk cancel is one statement."""

    output_field = JSONField()
    templates = {
        "postgresql": "(%(errors)s || jsonb_build_array(jsonb_build_object("
        "'exception_class_path', %(path)s::text, 'traceback', %(traceback)s::text)))",
        "sqlite": "json_insert(%(errors)s, '$[#]', json_object("
        "'exception_class_path', %(path)s, 'traceback', %(traceback)s))",
        "mysql": "JSON_ARRAY_APPEND(%(errors)s, '$', JSON_OBJECT("
        "'exception_class_path', %(path)s, 'traceback', %(traceback)s))",
    }

    def __init__(self, exception_class_path: str, traceback: str) -> None:
        super().__init__(F("errors"), Value(exception_class_path), Value(traceback))

    def as_sql(self, compiler, connection, **extra_context):
        template = self.templates.get(connection.vendor)
        if template is None:
            raise NotImplementedError(
                f"AppendError does not support {connection.vendor}."
            )
        parts, params = [], []
        for expression in self.get_source_expressions():
            sql, expression_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(expression_params)
        errors, path, traceback = parts
        return template % {
            "errors": errors,
            "path": path,
            "traceback": traceback,
        }, params


def status_recheck(status: str) -> Exact:
    """``status = <status>`` for a statement that finds its row by primary
    key and only re-checks the status, as ``COALESCE(status, '') = ...``
    (status is never NULL) so that no index on status can serve it.
    PostgreSQL's planner, with statistics taken before a purge (every row
    SUCCESSFUL), estimates a RUNNING or READY status at one row, as cheap as
    the primary key, and may pick ``ddt_purge_idx`` or a READY partial index
    instead: then one update reads every RUNNING row, or the whole backlog."""
    return Exact(Coalesce(F("status"), Value("")), status)
