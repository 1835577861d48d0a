"""MySQL and MariaDB: no ``UPDATE ... RETURNING``, so the claim is a locked
SELECT, an UPDATE and a read back in one transaction."""

from django.db import transaction
from django.db.models import QuerySet

from ..bulk_text import batches
from .base import _DROP_CLAIM_INDEXES, TABLE, Dialect, _columns
from .expressions import through_index


class MySQL(Dialect):
    """No UPDATE ... RETURNING: in one transaction, SELECT the ids ... FOR
    UPDATE SKIP LOCKED, mark them by primary key (the status re-check kept
    out of the optimiser's reach: through a status index the UPDATE would
    read, and wait on, every READY row, those other workers hold included),
    read them back. InnoDB locks every row it
    scans, so the claim indexes lead with the columns the claim filters on,
    in its order. The UPDATE and the read-back also force the primary key:
    with statistics that say the table is empty (MariaDB's engine-independent
    ones taken on an empty table, or InnoDB's sampled among the deleted rows
    of a purge) every scan looks free, and they would read the whole table
    to find the claimed ids."""

    append_worker_id = "JSON_ARRAY_APPEND(worker_ids, '$', %s)"
    # The completion too: with an empty table's statistics it read every row.
    by_primary_key = f"{TABLE} FORCE INDEX (PRIMARY)"
    create_indexes = (
        f"CREATE INDEX ddt_claim_idx ON {TABLE} "
        "(status, backend_name, priority DESC, due_at)",
        f"CREATE INDEX ddt_claim_queue_idx ON {TABLE} "
        "(status, backend_name, queue_name, priority DESC, due_at)",
    )
    drop_indexes = tuple(f"{drop} ON {TABLE}" for drop in _DROP_CLAIM_INDEXES)

    def among_running(self, queryset: QuerySet) -> QuerySet:
        """Through the claim index, led by status: MariaDB's statistics of an
        empty table would have the rescue, the release of a lost claim and
        ``requeue_stale_database_tasks`` read the whole table."""
        return through_index(queryset, "ddt_claim_idx")

    def insert_rows(self, connection, columns, rows, constants, batch_size):
        """The multi-row INSERT, with the constants sent once, into user
        variables that every row refers to: mysqlclient escapes each
        parameter in Python, so a row costs its own values only."""
        names = [f"@ddt_bulk_{index}" for index in range(len(constants))]
        per_row = len(columns) - len(constants)
        values = f"({', '.join(['%s'] * per_row + names)})"
        insert = f"INSERT INTO {TABLE} ({_columns(columns)}) VALUES "
        with connection.cursor() as cursor:
            if constants:
                assignments = ", ".join(f"{name} = %s" for name in names)
                cursor.execute(f"SET {assignments}", list(constants))
            for batch in batches(rows, batch_size, 0):
                params: list = []
                for row in batch:
                    params += row
                cursor.execute(insert + ", ".join([values] * len(batch)), params)

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
                f"UPDATE {self.by_primary_key} SET {mark} "
                f"WHERE COALESCE(status, '') = 'READY' AND id IN ({placeholders})",
                mark_params + ids,
            )
            cursor.execute(
                f"SELECT {_columns(columns)} FROM {self.by_primary_key} "
                f"WHERE id IN ({placeholders})",
                ids,
            )
            return cursor.fetchall()
