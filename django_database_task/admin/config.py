"""Which task backends and database the admin works with."""

from django.db import DEFAULT_DB_ALIAS
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, task_backends

from ..backends import DatabaseTaskBackend


def database_backends() -> list[DatabaseTaskBackend]:
    """The configured backends that keep tasks in the database, the default
    backend first."""
    backends = [
        task_backends[alias]
        for alias in task_backends.settings
        if isinstance(task_backends[alias], DatabaseTaskBackend)
    ]
    return sorted(backends, key=lambda b: b.alias != DEFAULT_TASK_BACKEND_ALIAS)


def admin_database() -> str:
    """The database alias the admin reads and writes tasks in.

    One admin page shows one table: that of the first database backend (the
    default backend if it is one). Backends whose ``OPTIONS["DATABASE"]``
    names another alias are not shown; see the README.
    """
    backends = database_backends()
    return backends[0].database if backends else DEFAULT_DB_ALIAS


def configured_queues() -> list[str] | None:
    """Every queue name the database backends allow, or None if one of them
    allows any queue name (an empty ``QUEUES``)."""
    queues: set[str] = set()
    for backend in database_backends():
        if not backend.queues:
            return None
        queues |= backend.queues
    return sorted(queues)
