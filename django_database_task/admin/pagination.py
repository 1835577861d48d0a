"""A paginator that never counts millions of rows to draw one page."""

import json

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Up to this many matching rows are counted exactly; beyond it the count
# is the planner's estimate (PostgreSQL, MySQL/MariaDB).
EXACT_COUNT_LIMIT = 10_000


def planner_estimate(queryset) -> int | None:
    """The number of rows the database planner expects ``queryset`` to
    return, without running it; None where there is no usable estimate."""
    connection = connections[queryset.db]
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
            if isinstance(plan, str):
                plan = json.loads(plan)
            return int(plan[0]["Plan"]["Plan Rows"])
        if connection.vendor == "mysql":
            cursor.execute(f"EXPLAIN {sql}", params)
            columns = [column[0] for column in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            return int(rows[0]["rows"] or 0) if rows else None
    return None


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to ``EXACT_COUNT_LIMIT`` rows (a COUNT over a LIMITed
    subquery, so it stops early); past that it uses the planner's estimate.
    SQLite has none and counts exactly. ``is_estimate`` tells the template."""

    exact_limit = EXACT_COUNT_LIMIT
    is_estimate = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        bounded = queryset.order_by().values("pk")[: self.exact_limit + 1].count()
        if bounded <= self.exact_limit:
            self.is_estimate = False
            return bounded
        estimate = planner_estimate(queryset)
        if estimate is None:
            self.is_estimate = False
            return queryset.count()
        self.is_estimate = True
        return max(estimate, bounded)
