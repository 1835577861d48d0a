"""Logging for people and for machines: ``JSONFormatter`` writes one object
per record, with the task attributes the engine attaches (``engine.events``)
as top-level keys (the README shows the ``LOGGING`` setting that plugs it
in); ``console_logging`` gives the worker command its human lines."""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else came through ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data |= {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_")
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class ConsoleFormatter(logging.Formatter):
    """The worker command's human lines: the message, and with ``details``
    a task's attempt, duration and error class; tracebacks only then."""

    def __init__(self, details: bool = False) -> None:
        super().__init__()
        self.details = details

    def format(self, record: logging.LogRecord) -> str:
        line = record.getMessage()
        if not self.details:
            return line
        attempt = getattr(record, "attempt", None)
        if attempt is not None:
            line += f" attempt={attempt}"
        duration = getattr(record, "duration", None)
        if duration is not None:
            line += f" duration={duration:.3f}s"
        if record.exc_info and record.exc_info[0] is not None:
            kind = record.exc_info[0]
            line += f" error={kind.__module__}.{kind.__qualname__}"
        return line


class OutputHandler(logging.Handler):
    """Writes records below WARNING to ``out`` and the rest to ``err``
    (a management command's OutputWrappers, so call_command captures them)."""

    def __init__(self, out, err, level: int) -> None:
        super().__init__(level)
        self.out = out
        self.err = err

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.out if record.levelno < logging.WARNING else self.err
            stream.write(self.format(record))
            stream.flush()
        except Exception:
            self.handleError(record)


VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO}


@contextmanager
def console_logging(out, err, verbosity: int) -> Iterator[None]:
    """Show the package's records on the command's streams, at the level
    ``-v`` asks for (0: warnings and failures, 1: a line per task, 2: task
    starts and details), unless the project's LOGGING gives the
    ``django_database_task`` logger handlers of its own: then those decide."""
    package = logging.getLogger("django_database_task")
    if package.handlers:
        yield
        return
    level = VERBOSITY_LEVELS.get(verbosity, logging.DEBUG)
    handler = OutputHandler(out, err, level)
    handler.setFormatter(ConsoleFormatter(details=verbosity >= 2))
    previous = package.level
    package.addHandler(handler)
    package.setLevel(level)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)
