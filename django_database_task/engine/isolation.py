"""Running a sync task with a timeout in a child process, killed when the
timeout passes: Python cannot stop a thread, but it can stop a process.

Children are forked by a ``forkserver`` that has set Django up once (see
``child``), so each costs a fork, not an interpreter start, and never inherits
the worker's threads or database connections. The child uses the worker's
database settings as they are at call time (a test database included).
"""

import multiprocessing
import pickle
from collections.abc import Sequence

from django.db import connections
from django.tasks.base import TaskError

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["django_database_task.engine.child"])


class TimedOut(Exception):
    """The child ran past its timeout and was killed."""


class Failed(Exception):
    """The task raised in the child: its exception (or a stand-in, when it
    cannot be pickled) and the error with the child's own traceback."""

    def __init__(self, exception: BaseException, error: TaskError) -> None:
        super().__init__(str(exception))
        self.exception = exception
        self.error = error


class ChildDied(Exception):
    """The child process ended without an answer (killed, out of memory)."""


def call(
    task_id: str,
    *,
    database: str,
    allowed_modules: Sequence[str] | None,
    timeout: float,
):
    """Run the claimed task ``task_id`` (a row of ``database``) in a child
    process, which loads it from its row as the worker did; its return value,
    or Failed, TimedOut or ChildDied."""
    receiver, sender = _context.Pipe(duplex=False)
    databases = {alias: connections[alias].settings_dict for alias in connections}
    process = _context.Process(
        target=_run,
        args=(task_id, database, allowed_modules, databases, sender),
        daemon=True,
    )
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            process.kill()
            raise TimedOut(
                f"The task ran longer than its timeout of {timeout:g} s; its "
                "process was killed."
            )
        try:
            kind, *payload = receiver.recv()
        except EOFError:
            process.join()
            raise ChildDied(
                f"The task's process ended with exit code {process.exitcode} "
                "before it answered."
            ) from None
    finally:
        process.join()
        receiver.close()
    if kind == "error":
        raise Failed(*payload)
    return payload[0]


def _run(
    task_id: str,
    database: str,
    allowed_modules: Sequence[str] | None,
    databases: dict,
    sender,
) -> None:
    """The child: load the task from its row (a Task does not pickle on every
    Django version), run it, send back its value or its error."""
    from ..models import DatabaseTask
    from ..results import load_task, to_task_result
    from .executor import call_arguments, error_from

    for alias, settings_dict in databases.items():
        connections[alias].settings_dict = settings_dict
    try:
        row = DatabaseTask.objects.using(database).get(pk=task_id)
        task = load_task(row, allowed_modules)
        args, kwargs = call_arguments(task, row, to_task_result(row, task))
        sender.send(("value", task.call(*args, **kwargs)))
    except BaseException as e:
        sender.send(("error", _portable(e), error_from(e)))
    finally:
        connections.close_all()
        sender.close()


def _portable(exception: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a stand-in that
    keeps its message."""
    try:
        pickle.loads(pickle.dumps(exception))
    except Exception:
        return RuntimeError(f"{type(exception).__qualname__}: {exception}")
    return exception
