"""PostgreSQL: one claim statement in autocommit, completion by arrays,
COPY for bulk enqueue, and NOTIFY/LISTEN."""

from ..bulk_text import copy_lines, copy_text
from .base import (
    _DROP_CLAIM_INDEXES,
    TABLE,
    Dialect,
    Statement,
    _columns,
    _partial_claim_indexes,
)

_ARRAY_TYPES = {
    "finished_at": "timestamptz",
    "due_at": "timestamptz",
    "return_value": "jsonb",
    "errors": "jsonb",
}


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

    bulk_batch_size = 10_000

    def insert_rows(self, connection, columns, rows, constants, batch_size):
        """``COPY ... FROM STDIN`` per ``batch_size`` rows, in the text
        format: no statement to parse or plan, and the constants rendered
        once for all rows. psycopg 2 has no ``copy()``: it gets the
        multi-row INSERT."""
        from django.db.backends.postgresql.psycopg_any import is_psycopg3

        if not is_psycopg3:
            super().insert_rows(connection, columns, rows, constants, batch_size)
            return
        copy = f"COPY {TABLE} ({_columns(columns)}) FROM STDIN"
        tail = "".join(f"\t{copy_text(value)}" for value in constants) + "\n"
        with connection.cursor() as cursor, connection.wrap_database_errors:
            for start in range(0, len(rows), batch_size):
                data = tail.join(copy_lines(rows[start : start + batch_size]))
                with cursor.copy(copy) as stream:
                    stream.write(data + tail)

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

    def finish_statement(self, *, ids, status, worker_id, values):
        """The values travel as one array per column, so the statement's
        text (which psycopg parses, and caches, per text) is the same for
        every batch. As in the claim, the status check is kept out of the
        planner's reach, so that it joins by primary key instead of reading
        every RUNNING row through the purge index."""
        columns = list(values)
        arrays = ", ".join(f"%s::{_ARRAY_TYPES[column]}[]" for column in columns)
        return (
            f"UPDATE {TABLE} SET status = %s, worker_id = '', "
            + ", ".join(f"{column} = v.{column}" for column in columns)
            + f" FROM unnest(%s::uuid[], {arrays}) AS v(id, {', '.join(columns)}) "
            f"WHERE {TABLE}.id = v.id AND COALESCE({TABLE}.status, '') = 'RUNNING' "
            f"AND {TABLE}.worker_id = %s",
            [
                status,
                list(ids),
                *(list(values[column]) for column in columns),
                worker_id,
            ],
        )
