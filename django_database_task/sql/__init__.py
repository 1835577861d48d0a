"""Every vendor-specific SQL statement the queue runs, in one place: this
package, one module per vendor (``postgresql``, ``mysql``, ``sqlite``) over
what they share (``base``).

Everything else goes through the ORM. A ``Dialect`` owns what differs between
databases: the claim (its statements and its transaction) that marks rows
RUNNING and appends the worker id to the JSON ``worker_ids`` list, the claim
by id, the completion of a batch, the claim indexes, ``bulk_enqueue``'s
writes (COPY on PostgreSQL, a multi-row INSERT elsewhere) and PostgreSQL's
NOTIFY/LISTEN wake-up, and the index that ORM queries for RUNNING tasks go
through (``among_running``). ``expressions`` holds what the ORM lacks: JSON,
a status re-check no index serves, and an index a query must use.

``'READY'`` is written as a literal rather than a parameter so that the
planner matches it against the partial indexes' ``WHERE status = 'READY'``.
"""

import re

from django.db import connections
from django.db.models import QuerySet

from .base import TABLE, Dialect, Statement
from .expressions import AppendError, JSONArrayLength, status_recheck
from .mysql import MySQL
from .postgresql import PostgreSQL
from .sqlite import SQLite

__all__ = [
    "TABLE",
    "AppendError",
    "Dialect",
    "JSONArrayLength",
    "MySQL",
    "PostgreSQL",
    "SQLite",
    "Statement",
    "among_running",
    "channel_name",
    "dialect_for",
    "status_recheck",
]

DIALECTS = {"postgresql": PostgreSQL(), "sqlite": SQLite(), "mysql": MySQL()}


def channel_name(backend_alias: str) -> str:
    """The NOTIFY channel of a backend: ``ddt_`` and the alias, in the
    characters of an unquoted identifier, within PostgreSQL's 63 bytes. Two
    aliases that map to one channel only cost each other spurious wake-ups."""
    return ("ddt_" + re.sub(r"[^a-z0-9_]", "_", backend_alias.lower()))[:63]


def among_running(queryset: QuerySet) -> QuerySet:
    """``queryset``, which looks for RUNNING tasks, as its database's dialect
    runs such queries (``Dialect.among_running``)."""
    return dialect_for(connections[queryset.db]).among_running(queryset)


def dialect_for(connection) -> Dialect:
    try:
        return DIALECTS[connection.vendor]
    except KeyError:
        raise NotImplementedError(
            "django-database-task supports PostgreSQL, MySQL/MariaDB and SQLite, "
            f"not {connection.display_name}."
        ) from None
