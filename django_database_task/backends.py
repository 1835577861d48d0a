import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.sql import InsertQuery
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResult, task_backends
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import (
    InvalidTask,
    InvalidTaskBackend,
    TaskResultDoesNotExist,
)
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django.utils.module_loading import import_string

from . import bulk, options
from .models import DatabaseTask
from .options import DatabaseTaskDefinition, OptionResolver
from .results import is_allowed, load_task, to_task_result
from .sql import PostgreSQL, channel_name, dialect_for
from .validation import to_json

# UPDATE ... RETURNING, which the SQLite claim relies on.
MIN_SQLITE_VERSION = (3, 35)


class DatabaseTaskBackend(BaseTaskBackend):
    """Stores tasks in a table of the project's own database.

    ``OPTIONS["DATABASE"]`` names the database alias holding the table
    (default ``"default"``). ``OPTIONS["ALLOWED_TASK_MODULES"]``, a list of
    module or package names, limits which task paths are enqueued and which
    a worker imports (default: any). ``TASK_DEFAULTS`` and ``TASK_OPTIONS``
    set retry options (see ``options``); workers heartbeat every
    ``HEARTBEAT_INTERVAL`` seconds and rescue the tasks of a worker silent for
    ``RESCUE_AFTER`` seconds. Enqueueing on the same database as the caller's
    transaction makes the task part of it: a rollback leaves no task behind.
    On PostgreSQL an enqueue NOTIFYs idle workers, which LISTEN on a
    connection to ``OPTIONS["LISTEN_DATABASE"]`` (default: ``DATABASE``);
    ``OPTIONS["LISTEN"] = False`` turns both off (see ``engine.listener``).
    """

    task_class = DatabaseTaskDefinition
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias, params):
        super().__init__(alias, params)
        self.database = self.options.get("DATABASE", DEFAULT_DB_ALIAS)
        self.allowed_task_modules = self._allowed_task_modules()
        try:
            self.task_options = OptionResolver(self.options, alias)
        except ValueError as e:
            raise ImproperlyConfigured(str(e)) from None
        self.heartbeat_interval = self._seconds("HEARTBEAT_INTERVAL", 5.0)
        self.rescue_after = self._seconds("RESCUE_AFTER", 60.0)
        self.listen = self.options.get("LISTEN", True)
        self.listen_database = self.options.get("LISTEN_DATABASE") or self.database
        if not isinstance(self.listen, bool) or not isinstance(
            self.listen_database, str
        ):
            raise ImproperlyConfigured(
                f"Task backend {alias!r}: LISTEN must be True or False and "
                "LISTEN_DATABASE a database alias."
            )
        self.channel = channel_name(alias)
        if self.rescue_after < 2 * self.heartbeat_interval:
            raise ImproperlyConfigured(
                f"Task backend {alias!r}: RESCUE_AFTER ({self.rescue_after:g} s) "
                "must be at least twice HEARTBEAT_INTERVAL "
                f"({self.heartbeat_interval:g} s), or a live worker that missed "
                "one heartbeat would lose its tasks."
            )

    def _seconds(self, name: str, default: float) -> float:
        value = self.options.get(name, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value < 86_400
        ):
            raise ImproperlyConfigured(
                f"Task backend {self.alias!r}: {name} must be a number of seconds "
                f"above 0 and under a day, not {value!r}."
            )
        return float(value)

    def _allowed_task_modules(self) -> tuple[str, ...] | None:
        modules = self.options.get("ALLOWED_TASK_MODULES")
        if modules is None:
            return None
        if isinstance(modules, str) or not all(
            isinstance(module, str) and module.strip(".") for module in modules
        ):
            raise ImproperlyConfigured(
                f"Task backend {self.alias!r}: ALLOWED_TASK_MODULES must be a list "
                f"of module names such as ['myapp.tasks'], not {modules!r}."
            )
        return tuple(module.strip(".") for module in modules)

    def _check_importable(self, task) -> None:
        """A worker finds the task by its path: refuse one it could not find
        (defined in ``__main__``, or shadowed by another name) or would not
        import (outside ALLOWED_TASK_MODULES)."""
        if not is_allowed(task.module_path, self.allowed_task_modules):
            raise InvalidTask(
                f"Task {task.module_path!r} is not in a module listed in "
                f"OPTIONS['ALLOWED_TASK_MODULES'] of task backend {self.alias!r} "
                f"({', '.join(self.allowed_task_modules or ())})."
            )
        try:
            found = import_string(task.module_path)
        except ImportError:
            found = None
        if getattr(found, "func", None) is not task.func:
            raise InvalidTask(
                f"Task {task.module_path!r} cannot be imported by that path, so a "
                "worker could not run it. Define tasks at module level in an "
                "importable module (not __main__)."
            )

    def validate_task(self, task) -> None:
        super().validate_task(task)
        try:
            options.check(options.of_task(task), f"Task {task.module_path!r}")
        except ValueError as e:
            raise InvalidTask(str(e)) from None

    def enqueue(self, task, args, kwargs) -> TaskResult:
        self._check_enqueueable(task)
        row = self._new_row(task, args, kwargs, timezone.now())
        dialect = dialect_for(connections[self.database])
        if self.listen and isinstance(dialect, PostgreSQL):
            self._insert_notifying(row, dialect)
        else:
            row.save(using=self.database, force_insert=True)
        result = to_task_result(row, task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def bulk_enqueue(
        self,
        task,
        calls: Iterable[tuple[Sequence[Any], Mapping[str, Any]]],
        *,
        batch_size: int | None = None,
    ) -> list[TaskResult]:
        """Enqueue ``task`` once per ``(args, kwargs)`` in ``calls``, all or
        nothing: every argument is checked before anything is written, then
        the rows go in one transaction, one statement per ``batch_size``
        (``COPY`` on PostgreSQL, a multi-row INSERT elsewhere; by default
        10,000 and 1,000 rows). On PostgreSQL idle workers are notified once.
        ``task_enqueued`` is sent for each task once all are written."""
        self._check_enqueueable(task)
        return bulk.enqueue_calls(self, task, calls, batch_size)

    def _insert_notifying(self, row: DatabaseTask, dialect: PostgreSQL) -> None:
        """``row.save()`` and the NOTIFY in one statement, as fast as the save
        alone. It sends no pre_save/post_save signals: nothing here uses them."""
        query = InsertQuery(DatabaseTask)
        query.insert_values(DatabaseTask._meta.local_concrete_fields, [row])
        [insert] = query.get_compiler(using=self.database).as_sql()
        statement = dialect.insert_notifying(insert, self.channel, row.queue_name)
        with (
            transaction.mark_for_rollback_on_error(self.database),
            connections[self.database].cursor() as cursor,
        ):
            cursor.execute(*statement)
        row._state.adding = False
        row._state.db = self.database

    def _check_enqueueable(self, task) -> None:
        self.validate_task(task)
        self._check_importable(task)

    def _new_row(self, task, args, kwargs, now, where: str = "") -> DatabaseTask:
        """An unsaved row for one call of ``task``; its arguments checked."""
        prefix = f"{where}: " if where else ""
        resolved = self.task_options.resolve(task.module_path, task)
        try:
            json_args = to_json(args, "args")
            json_kwargs = {
                name: to_json(value, f"kwargs[{name!r}]")
                for name, value in kwargs.items()
            }
        except (TypeError, ValueError) as e:
            raise type(e)(f"{prefix}{e}") from None
        return DatabaseTask(
            id=uuid.uuid4(),
            task_path=task.module_path,
            queue_name=task.queue_name,
            priority=task.priority,
            backend_name=self.alias,
            args=json_args,
            kwargs=json_kwargs,
            run_after=task.run_after,
            due_at=task.run_after or now,
            enqueued_at=now,
            max_attempts=resolved.max_attempts,
            retry_backoff=resolved.retry_backoff,
            retry_backoff_max=resolved.retry_backoff_max,
        )

    def get_row(self, result_id) -> DatabaseTask:
        """The stored row of a result id; TaskResultDoesNotExist if there is none
        in this backend, malformed ids included."""
        try:
            return DatabaseTask.objects.using(self.database).get(
                pk=result_id, backend_name=self.alias
            )
        except (DatabaseTask.DoesNotExist, ValidationError, ValueError, TypeError):
            raise TaskResultDoesNotExist(result_id) from None

    def get_result(self, result_id) -> TaskResult:
        row = self.get_row(result_id)
        return to_task_result(row, load_task(row, self.allowed_task_modules))

    def check(self, **kwargs):
        if self.database not in connections.settings:
            yield checks.Error(
                f"Task backend {self.alias!r} names the database "
                f"{self.database!r}, which is not in DATABASES.",
                hint="Set OPTIONS['DATABASE'] to a configured database alias.",
                id="django_database_task.E001",
            )
            return
        if self.listen and self.listen_database not in connections.settings:
            yield checks.Error(
                f"Task backend {self.alias!r}: LISTEN_DATABASE names the database "
                f"{self.listen_database!r}, which is not in DATABASES.",
                hint="Name a configured alias, or set OPTIONS['LISTEN'] = False.",
                id="django_database_task.E003",
            )
        vendor_is_sqlite = (
            connections.settings[self.database]["ENGINE"]
            == "django.db.backends.sqlite3"
        )
        if vendor_is_sqlite and sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            yield checks.Error(
                f"SQLite {sqlite3.sqlite_version} is too old for "
                "django-database-task, which needs 3.35 or newer.",
                id="django_database_task.E002",
            )


def get_backend(backend_name: str = DEFAULT_TASK_BACKEND_ALIAS) -> DatabaseTaskBackend:
    """The configured backend named ``backend_name``, which must store tasks
    in the database."""
    if backend_name not in task_backends.settings:
        configured = ", ".join(sorted(task_backends.settings)) or "none"
        raise InvalidTaskBackend(
            f"Task backend {backend_name!r} is not configured in TASKS "
            f"(configured: {configured})."
        )
    backend = task_backends[backend_name]
    if not isinstance(backend, DatabaseTaskBackend):
        raise InvalidTaskBackend(
            f"Task backend {backend_name!r} is a {type(backend).__name__}, not a "
            "DatabaseTaskBackend, so it keeps no tasks in the database."
        )
    return backend
