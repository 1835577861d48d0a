"""Copies of one row, written by the database itself: a million finished
tasks in seconds, for any queue's table, on PostgreSQL, MariaDB and SQLite.

The copies keep every column of the template row but the primary key (a new
UUID each, or left to the sequence) and the times, which move back one
second per copy: identical keys would make indexes unrealistically small
(PostgreSQL deduplicates them). ``run_after`` stays as it is: some queues
give it a meaning of its own (a far-future "no delay" value).

Imports nothing from any queue: ``peers.py`` copies this module into each
queue's throwaway project.
"""

from django.db import connection, models

CHUNK = 100_000  # Rows per INSERT: each is one statement and transaction.
KEPT_TIMES = {"run_after"}


def numbers(count: int) -> str:
    """A query of the integers 0 .. count - 1 in a column ``n``, portable to
    the three databases (MariaDB caps recursive queries at 1,000 rows)."""
    digits = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))
    places = len(str(max(count - 1, 1)))
    terms = " + ".join(f"t{place}.d * {10**place}" for place in range(places))
    tables = ", ".join(f"({digits}) AS t{place}" for place in range(places))
    return f"SELECT n FROM (SELECT {terms} AS n FROM {tables}) AS ns WHERE n < {count}"


def _uuid_sql(field: models.Field) -> str:
    if connection.vendor == "postgresql":
        return "gen_random_uuid()"
    if connection.vendor == "mysql":
        # Django stores UUIDs natively on MariaDB 10.7+, else as 32 hex digits.
        if field.db_type(connection).lower() == "uuid":
            return "UUID()"
        return "REPLACE(UUID(), '-', '')"
    if connection.vendor == "sqlite":
        return "lower(hex(randomblob(16)))"
    raise ValueError(f"No fill for the {connection.vendor} database.")


def _earlier_sql(column: str, seconds: str) -> str:
    if connection.vendor == "postgresql":
        return f"{column} - ({seconds}) * INTERVAL '1 second'"
    if connection.vendor == "mysql":
        return f"{column} - INTERVAL ({seconds}) SECOND"
    # Django's SQLite text format, to the millisecond; "%%" since the query
    # has parameters.
    shifted = f"{column}, '-' || ({seconds}) || ' seconds'"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {shifted})"


def copy_row(model: type[models.Model], pk: object, count: int) -> None:
    """Insert ``count`` copies of the row of ``model`` whose key is ``pk``."""
    if count < 0:
        raise ValueError(f"count must be 0 or more, not {count}.")
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk_field = model._meta.pk
    columns, values = [], []
    for field in model._meta.concrete_fields:
        column = quote(field.column)
        source = f"template.{column}"
        if field is pk_field:
            if isinstance(field, models.AutoField):
                continue  # The sequence numbers it.
            if not isinstance(field, models.UUIDField):
                raise ValueError(f"No fill for a {type(field).__name__} key.")
            source = _uuid_sql(field)
        elif isinstance(field, models.DateTimeField) and field.name not in KEPT_TIMES:
            source = _earlier_sql(source, "ns.n + {offset} + 1")
        columns.append(column)
        values.append(source)
    key = pk_field.get_db_prep_value(pk, connection)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # A larger page cache than the default 2 MB: random keys touch
            # every page of the indexes. For this connection only.
            cursor.execute("PRAGMA cache_size = -262144")
        for offset in range(0, count, CHUNK):
            size = min(CHUNK, count - offset)
            select = ", ".join(values).replace("{offset}", str(offset))
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} "
                f"FROM {table} AS template, ({numbers(size)}) AS ns "
                f"WHERE template.{quote(pk_field.column)} = %s",
                [key],
            )


def refresh_statistics(model: type[models.Model]) -> None:
    """What PostgreSQL's autovacuum and InnoDB's automatic statistics would
    do soon after a million inserts; SQLite gathers none by itself."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"VACUUM ANALYZE {table}")
        elif connection.vendor == "mysql":
            cursor.execute(f"ANALYZE TABLE {table}")
            cursor.fetchall()
