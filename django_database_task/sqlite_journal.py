"""SQLite's journal mode, checked where the queue lives.

In its default rollback-journal mode SQLite lets no one read while anyone
writes, so web requests enqueueing and workers claiming wait on each other.
In WAL mode readers and the one writer go on side by side: enqueueing from
several processes runs about twice as fast (see the README's figures). The
mode belongs to the database file and to the project, so the queue does not
switch it; ``migrate`` and ``check --database`` say when it is off.
"""

from django.core import checks
from django.db import connections
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend

from .backends import DatabaseTaskBackend

HINT = (
    'Add "init_command": "PRAGMA journal_mode=WAL;" to the OPTIONS of the '
    "database (see the README, Performance)."
)


def check_sqlite_journal(
    app_configs=None, databases=None, **kwargs
) -> list[checks.CheckMessage]:
    """W004 for each database in ``databases`` that holds tasks in SQLite
    outside WAL mode."""
    found = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "sqlite" or alias not in _task_databases():
            continue
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            (mode,) = cursor.fetchone()
        if str(mode).lower() != "wal":
            found.append(
                checks.Warning(
                    f"The SQLite database {alias!r} holds tasks in journal mode "
                    f"{mode!r}: enqueueing and workers block each other.",
                    hint=HINT,
                    id="django_database_task.W004",
                )
            )
    return found


def _task_databases() -> set[str]:
    databases = set()
    for alias in task_backends.settings:
        try:
            backend = task_backends[alias]
        except InvalidTaskBackend:
            continue  # Django's own checks report it.
        if isinstance(backend, DatabaseTaskBackend):
            databases.add(backend.database)
    return databases
