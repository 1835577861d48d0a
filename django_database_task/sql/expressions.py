"""The expressions the ORM lacks: JSON array length and append, per vendor,
a status re-check no index serves, and an index a query must go through."""

from django.db.models import F, Func, IntegerField, JSONField, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact
from django.db.models.sql.datastructures import BaseTable


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


class _IndexedTable(BaseTable):
    """The query's own table, read through one index (MySQL's ``FORCE
    INDEX``): the ORM has no way to name an index."""

    def __init__(self, table_name: str, alias: str | None, index: str) -> None:
        super().__init__(table_name, alias)
        self.index = index

    def as_sql(self, compiler, connection):
        sql, params = super().as_sql(compiler, connection)
        return f"{sql} FORCE INDEX ({connection.ops.quote_name(self.index)})", params

    def relabeled_clone(self, change_map):
        alias = change_map.get(self.table_alias, self.table_alias)
        return self.__class__(self.table_name, alias, self.index)

    @property
    def identity(self):
        return (*super().identity, self.index)


def through_index(queryset: QuerySet, index: str) -> QuerySet:
    """``queryset``, its table read through ``index`` whatever the optimizer
    thinks of it (MySQL/MariaDB); querysets chained from it keep the hint."""
    queryset = queryset.all()
    query = queryset.query
    table = query.alias_map[query.get_initial_alias()]
    query.alias_map[table.table_alias] = _IndexedTable(
        table.table_name, table.table_alias, index
    )
    return queryset
