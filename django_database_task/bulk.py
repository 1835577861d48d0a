"""``bulk_enqueue``: many calls of one task, all checked before anything is
written, then written with one statement per chunk in one transaction.

The per-call work is kept to what differs between calls (an id and the
arguments as JSON): no model instance is built, and everything the calls
share (options, timestamps, the columns' defaults) is resolved and adapted
for the database once per bulk.
"""

import gc
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import connections, transaction
from django.db.models import JSONField
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.signals import task_enqueued
from django.utils import timezone

from .models import DatabaseTask
from .sql import PostgreSQL, dialect_for
from .validation import to_json

if TYPE_CHECKING:
    from .backends import DatabaseTaskBackend

Call = tuple[Sequence[Any], Mapping[str, Any]]

# The columns that differ between the rows of one bulk; each other column
# holds the same value in every row.
PER_ROW = ("id", "args", "kwargs")

# The TaskResult fields that must not be shared between results.
_OWN_FIELDS = frozenset({"id", "args", "kwargs", "errors", "worker_ids"})


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps`` for values ``to_json`` returned, without the set-up it
    repeats on every call: the C encoder it uses, made once, with its
    defaults (plain ``json.dumps`` where CPython's accelerator is absent).
    No circular check: ``to_json`` returns fresh lists and dicts."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return json.dumps
    encode = make(
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )
    return lambda value: "".join(encode(value, 0))


_dumps = _json_encoder()

# The hex digit after the version 4 UUID's variant bits (10xx) are set.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def random_ids(count: int) -> list[str]:
    """``count`` version 4 UUIDs, as ``str(uuid.uuid4())`` writes them, from
    one read of the OS's random source instead of one per id."""
    digits = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        h = digits[start : start + 32]
        ids.append(
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
        )
    return ids


def enqueue_calls(
    backend: "DatabaseTaskBackend",
    task: Task,
    calls: Iterable[Call],
    batch_size: int | None = None,
) -> list[TaskResult]:
    """Enqueue ``task`` once per ``(args, kwargs)`` in ``calls`` (the task
    itself already checked by the backend); see ``DatabaseTaskBackend``."""
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}.")
    connection = connections[backend.database]
    dialect = dialect_for(connection)
    with _collector_paused():
        checked = checked_calls(calls)
        now = timezone.now()
        columns, constants = shared_columns(backend, task, now, connection)
        ids = random_ids(len(checked))
        # As UUIDField stores them: text, or without dashes where not native.
        stored_ids = (
            ids
            if connection.features.has_native_uuid_field
            else [task_id.replace("-", "") for task_id in ids]
        )
        rows = [
            (stored_id, _dumps(args), _dumps(kwargs) if kwargs else "{}")
            for stored_id, (args, kwargs) in zip(stored_ids, checked, strict=True)
        ]
        with transaction.atomic(using=backend.database):
            dialect.insert_rows(
                connection,
                PER_ROW + columns,
                rows,
                constants,
                batch_size or dialect.bulk_batch_size,
            )
            if rows and backend.listen and isinstance(dialect, PostgreSQL):
                with connection.cursor() as cursor:
                    cursor.execute(
                        *dialect.notify_statement(backend.channel, task.queue_name)
                    )
        results = ready_results(task, backend.alias, now, ids, checked)
    for result in results:
        task_enqueued.send(type(backend), task_result=result)
    return results


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk builds its rows and
    results. Tens of thousands of new containers, none in a cycle, would
    otherwise set off full collections that walk every object of the
    process: a third of the bulk's CPU time. Reference counting frees as
    usual; the collector resumes (if it was on) before any receiver of
    ``task_enqueued`` runs."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def checked_calls(calls: Iterable[Call]) -> list[tuple[Any, dict[str, Any]]]:
    """Every call's arguments as ``to_json`` normalises them, or the first
    bad call's error, prefixed with its place in ``calls``."""
    if not isinstance(calls, Iterable) or isinstance(calls, str | bytes):
        raise TypeError(
            f"calls must be an iterable of (args, kwargs) pairs, not {calls!r}."
        )
    checked = []
    for index, call in enumerate(calls):
        if not (type(call) is tuple or isinstance(call, Sequence)) or len(call) != 2:
            raise TypeError(
                f"calls[{index}] must be an (args, kwargs) pair, not {call!r}."
            )
        args, kwargs = call
        if not (type(args) is tuple or type(args) is list) and (
            not isinstance(args, Sequence) or isinstance(args, str | bytes)
        ):
            raise TypeError(f"calls[{index}]: args must be a list or a tuple.")
        if type(kwargs) is not dict and not isinstance(kwargs, Mapping):
            raise TypeError(f"calls[{index}]: kwargs must be a dict.")
        try:
            checked.append((to_json(args, "args"), to_json(kwargs, "kwargs")))
        except (TypeError, ValueError) as e:
            raise type(e)(f"calls[{index}]: {e}") from None
    return checked


def shared_columns(
    backend: "DatabaseTaskBackend", task: Task, now, connection
) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The columns every row of the bulk shares and their values, adapted for
    ``connection`` as the ORM would adapt them. Columns not set here take
    their model default; a NULL one is left out (NULL is what it gets)."""
    options = backend.task_options.resolve(task.module_path, task)
    values = {
        "task_path": task.module_path,
        "queue_name": task.queue_name,
        "priority": task.priority,
        "backend_name": backend.alias,
        "status": TaskResultStatus.READY.value,
        "run_after": task.run_after,
        "due_at": task.run_after or now,
        "enqueued_at": now,
        "max_attempts": options.max_attempts,
        "retry_backoff": options.retry_backoff,
        "retry_backoff_max": options.retry_backoff_max,
    }
    columns, constants = [], []
    for field in DatabaseTask._meta.local_concrete_fields:
        if field.attname in PER_ROW:
            continue
        if field.attname in values:
            value = values[field.attname]
        else:
            value = field.get_default()
        if value is None and field.null:
            continue
        if isinstance(field, JSONField):
            # As text, which every database casts to its JSON type; on
            # PostgreSQL the ORM's Jsonb wrapper would be dumped once per row.
            value = _dumps(value)
        else:
            value = field.get_db_prep_save(value, connection)
        columns.append(field.column)
        constants.append(value)
    return tuple(columns), tuple(constants)


def ready_results(
    task: Task,
    backend_alias: str,
    enqueued_at,
    ids: Sequence[str],
    calls: Sequence[tuple[Any, dict[str, Any]]],
) -> list[TaskResult]:
    """The TaskResults of freshly enqueued tasks, equal to those ``enqueue()``
    returns. The first is built by its constructor; the others copy its
    shared fields slot by slot, several times faster, and get their own id,
    arguments and (empty) lists."""
    if not ids:
        return []

    def build(task_id: str, args: Any, kwargs: dict[str, Any]) -> TaskResult:
        return TaskResult(
            task=task,
            id=task_id,
            status=TaskResultStatus.READY,
            enqueued_at=enqueued_at,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
            kwargs=kwargs,
            backend=backend_alias,
            errors=[],
            worker_ids=[],
        )

    first = build(ids[0], *calls[0])
    results = [first]
    rest = zip(ids[1:], calls[1:], strict=True)
    if not all("__slots__" in vars(kind) for kind in TaskResult.__mro__[:-1]):
        results.extend(build(task_id, *call) for task_id, call in rest)
        return results
    slot = {
        name: getattr(kind, name).__set__
        for kind in TaskResult.__mro__[:-1]
        for name in kind.__slots__
    }
    shared = [
        (setter, getattr(first, name))
        for name, setter in slot.items()
        if name not in _OWN_FIELDS
    ]
    set_id, set_args, set_kwargs = slot["id"], slot["args"], slot["kwargs"]
    set_errors, set_worker_ids = slot["errors"], slot["worker_ids"]
    new = object.__new__
    for task_id, (args, kwargs) in rest:
        result = new(TaskResult)
        for setter, value in shared:
            setter(result, value)
        set_id(result, task_id)
        set_args(result, args)
        set_kwargs(result, kwargs)
        set_errors(result, [])
        set_worker_ids(result, [])
        results.append(result)
    return results
