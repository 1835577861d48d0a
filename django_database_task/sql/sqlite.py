"""SQLite: the claim inside ``BEGIN IMMEDIATE``."""

from .base import (
    _DROP_CLAIM_INDEXES_IF_EXIST,
    TABLE,
    Dialect,
    _columns,
    _partial_claim_indexes,
)


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
