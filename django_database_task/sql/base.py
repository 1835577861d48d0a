"""What every dialect shares: the task table, the claim's select and mark,
the claim by id, the completion of a batch, and the multi-row INSERT of
``bulk_enqueue``. Each vendor's module overrides what it does differently."""

from collections.abc import Sequence

from django.db.models import QuerySet

from ..bulk_text import batches

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
    # The task table, for statements that find their rows by primary key.
    by_primary_key = TABLE

    # bulk_enqueue: rows per statement unless the caller asks otherwise.
    bulk_batch_size = 1000

    def among_running(self, queryset: QuerySet) -> QuerySet:
        """``queryset``, which looks for RUNNING tasks (a few among many),
        as it must run to read only those whatever the statistics say."""
        return queryset

    def insert_rows(
        self,
        connection,
        columns: Sequence[str],
        rows: Sequence[tuple[str, ...]],
        constants: tuple,
        batch_size: int,
    ) -> None:
        """Insert ``rows`` of text values, each followed by the ``constants``
        (values adapted for this database, the same in every row), into
        ``columns`` of the task table: one multi-row INSERT per
        ``batch_size`` rows, fewer when the database caps the parameters of
        a statement (SQLite) or the text of the rows passes
        ``bulk_text.INSERT_CHARS``."""
        limit = connection.features.max_query_params
        if limit:
            batch_size = max(1, min(batch_size, limit // len(columns)))
        values = f"({', '.join(['%s'] * len(columns))})"
        insert = f"INSERT INTO {TABLE} ({_columns(columns)}) VALUES "
        shared = sum(len(value) for value in constants if isinstance(value, str))
        with connection.cursor() as cursor:
            for batch in batches(rows, batch_size, shared):
                params: list = []
                for row in batch:
                    params += row
                    params += constants
                cursor.execute(insert + ", ".join([values] * len(batch)), params)

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

    def finish_statement(
        self,
        *,
        ids: Sequence,
        status: str,
        worker_id: str,
        values: dict[str, Sequence],
    ) -> Statement:
        """One UPDATE storing the outcomes of the tasks ``ids``, all ending in
        ``status``, while ``worker_id`` still holds them: ``values`` maps a
        column to its value per task, in ``ids`` order. Tasks are found by
        primary key: the status re-check is written so that no index on
        status can serve it (see ``expressions.status_recheck``)."""
        assignments = ["status = %s", "worker_id = ''"]
        params: list = [status]
        for column, per_task in values.items():
            if all(value is per_task[0] for value in per_task):
                assignments.append(f"{column} = %s")
                params.append(per_task[0])
                continue
            cases = " ".join(["WHEN %s THEN %s"] * len(ids))
            assignments.append(f"{column} = CASE id {cases} END")
            for task_id, value in zip(ids, per_task, strict=True):
                params += [task_id, value]
        placeholders = ", ".join(["%s"] * len(ids))
        return (
            f"UPDATE {self.by_primary_key} SET {', '.join(assignments)} "
            f"WHERE id IN ({placeholders}) AND COALESCE(status, '') = 'RUNNING' "
            "AND worker_id = %s",
            [*params, *ids, worker_id],
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
