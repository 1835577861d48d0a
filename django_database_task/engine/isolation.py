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
from typing import Any

from django.db import connections
from django.tasks import Task
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


def call(task: Task, args: Sequence[Any], kwargs: dict[str, Any], *, timeout: float):
    """``task.call(*args, **kwargs)`` in a child process; its return value,
    or Failed, TimedOut or ChildDied."""
    receiver, sender = _context.Pipe(duplex=False)
    databases = {alias: connections[alias].settings_dict for alias in connections}
    process = _context.Process(
        target=_run,
        args=(task, tuple(args), kwargs, databases, sender),
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


def _run(task: Task, args: tuple, kwargs: dict, databases: dict, sender) -> None:
    """The child: run the task, send back its value or its error."""
    from .executor import error_from

    for alias, settings_dict in databases.items():
        connections[alias].settings_dict = settings_dict
    try:
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
