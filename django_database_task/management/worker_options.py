"""The options of ``run_database_tasks``: declared, checked before anything
runs, and passed on to the worker processes of ``--processes``."""

import argparse
import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS
from django.tasks.exceptions import InvalidTaskBackend

from django_database_task.api import get_backend
from django_database_task.backends import DatabaseTaskBackend
from django_database_task.engine.supervisor import REPORT_FD_OPTION
from django_database_task.validation import option_names

MAX_CONCURRENCY = 1000
MAX_PROCESSES = 64
# A day: longer waits gain nothing, and select() cannot wait forever.
MAX_INTERVAL = 86_400
# Below this a worker is over its limit before its first task.
MIN_MEMORY_MB = 16
MAX_MEMORY_MB = 1 << 20  # 1 TiB


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queue",
        action="append",
        default=[],
        help="Queue name to process (all queues if not specified). Repeat "
        "the option or separate names with commas for several queues.",
    )
    parser.add_argument(
        "--backend",
        default=DEFAULT_TASK_BACKEND_ALIAS,
        help='Backend name (default: "default").',
    )
    parser.add_argument(
        "--continuous",
        action="store_true",
        help="Keep polling even when no tasks.",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="Polling interval in seconds (default: 5).",
    )
    parser.add_argument(
        "--max-tasks",
        type=int,
        default=0,
        help="Maximum number of tasks to process (0=unlimited).",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="Tasks run at once in this process: sync ones in threads, async "
        f"ones on one event loop (default: 1, max: {MAX_CONCURRENCY}).",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="Seconds running tasks get to finish after the first SIGTERM or "
        "SIGINT, with --concurrency above 1 (default: 30). Tasks still "
        "running then are left to the rescue.",
    )
    parser.add_argument(
        "--processes",
        type=int,
        help="Run this many worker processes (at most "
        f"{MAX_PROCESSES}), each with --concurrency, under a supervisor that "
        "replaces those that die and forwards SIGTERM and SIGINT to them.",
    )
    parser.add_argument(
        "--max-tasks-per-child",
        type=int,
        default=0,
        help="With --processes: replace a worker process after this many "
        "tasks (0=never).",
    )
    parser.add_argument(
        "--max-memory-per-child",
        type=int,
        default=0,
        metavar="MB",
        help="With --processes: replace a worker process once its resident "
        f"memory exceeds this many MiB after a task (0=never, else at least "
        f"{MIN_MEMORY_MB}).",
    )
    parser.add_argument(
        "--empty-exit-code",
        type=int,
        default=0,
        help="Exit with this status when the run processed no task (default: 0, off).",
    )
    parser.add_argument(
        "--failed-exit-code",
        type=int,
        default=0,
        help="Exit with this status when a task of the run ended FAILED "
        "(default: 0, off).",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="Development: restart the worker when code changes, as runserver "
        "does; running tasks finish first. Needs --continuous.",
    )
    # Given by the supervisor to its children: the socket they report on.
    parser.add_argument(REPORT_FD_OPTION, type=int, help=argparse.SUPPRESS)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise CommandError(message)


def validate(options: dict[str, Any]) -> tuple[DatabaseTaskBackend, list[str]]:
    """The backend and queue names to run, or CommandError for the first bad
    option; nothing has touched the database yet."""
    _require(
        0 < options["interval"] <= MAX_INTERVAL,
        f"--interval must be a number of seconds above 0 and at most "
        f"{MAX_INTERVAL}, not {options['interval']}.",
    )
    _require(
        options["max_tasks"] >= 0,
        f"--max-tasks must be 0 (unlimited) or more, not {options['max_tasks']}.",
    )
    _require(
        1 <= options["concurrency"] <= MAX_CONCURRENCY,
        f"--concurrency must be from 1 to {MAX_CONCURRENCY}, "
        f"not {options['concurrency']}.",
    )
    _require(
        0 <= options["shutdown_timeout"] <= MAX_INTERVAL,
        f"--shutdown-timeout must be a number of seconds from 0 to "
        f"{MAX_INTERVAL}, not {options['shutdown_timeout']}.",
    )
    _validate_processes(options)
    for name in ("empty_exit_code", "failed_exit_code"):
        _require(
            0 <= options[name] <= 255,
            f"--{name.replace('_', '-')} must be from 0 (off) to 255, "
            f"not {options[name]}.",
        )
    _validate_reload(options)
    try:
        backend = get_backend(options["backend"])
    except InvalidTaskBackend as e:
        raise CommandError(str(e)) from None
    return backend, _queue_names(options, backend)


def _validate_processes(options: dict[str, Any]) -> None:
    processes = options["processes"]
    supervised = processes is not None or options["supervisor_fd"] is not None
    if processes is not None:
        _require(
            1 <= processes <= MAX_PROCESSES,
            f"--processes must be from 1 to {MAX_PROCESSES}, not {processes}.",
        )
        _require(
            not options["max_tasks"],
            "--max-tasks limits one worker process; with --processes use "
            "--max-tasks-per-child.",
        )
        _require(
            bool(getattr(settings, "SETTINGS_MODULE", None)),
            "--processes starts workers that load the settings module; "
            "settings configured in code have none.",
        )
    per_child = options["max_tasks_per_child"]
    _require(
        per_child >= 0,
        f"--max-tasks-per-child must be 0 (never) or more, not {per_child}.",
    )
    _require(
        supervised or not per_child,
        "--max-tasks-per-child needs --processes; a single worker has --max-tasks.",
    )
    memory = options["max_memory_per_child"]
    _require(
        not memory or MIN_MEMORY_MB <= memory <= MAX_MEMORY_MB,
        f"--max-memory-per-child must be 0 (never) or from {MIN_MEMORY_MB} to "
        f"{MAX_MEMORY_MB} MiB, not {memory}.",
    )
    _require(
        supervised or not memory,
        "--max-memory-per-child needs --processes, whose supervisor replaces "
        "the worker that stops.",
    )


def _validate_reload(options: dict[str, Any]) -> None:
    if not options["reload"]:
        return
    _require(
        options["processes"] is None,
        "--reload restarts one worker in development; it cannot be combined "
        "with --processes.",
    )
    _require(
        options["continuous"],
        "--reload needs --continuous: a one-shot run ends before code changes.",
    )
    _require(
        not (options["empty_exit_code"] or options["failed_exit_code"]),
        "--empty-exit-code and --failed-exit-code are for schedulers; --reload "
        "is for development, and its restarts would lose them.",
    )


def _queue_names(options: dict[str, Any], backend: DatabaseTaskBackend) -> list[str]:
    try:
        names = option_names(options["queue"], "--queue")
    except ValueError as e:
        raise CommandError(str(e)) from None
    unknown = [name for name in names if backend.queues and name not in backend.queues]
    if unknown:
        raise CommandError(
            f"Queue {unknown[0]!r} is not in the QUEUES of backend "
            f"{backend.alias!r} ({', '.join(sorted(backend.queues))})."
        )
    return names


def child_command(options: dict[str, Any], queue_names: list[str]) -> list[str]:
    """The command line of one supervised worker: this run's options, with
    --max-tasks-per-child as its --max-tasks."""
    command = [
        sys.executable,
        "-m",
        "django",
        "run_database_tasks",
        f"--backend={options['backend']}",
        f"--interval={options['interval']!r}",
        f"--concurrency={options['concurrency']}",
        f"--shutdown-timeout={options['shutdown_timeout']!r}",
        f"--verbosity={options['verbosity']}",
        # The supervisor ran them.
        "--skip-checks",
        *(f"--queue={name}" for name in queue_names),
    ]
    if options["continuous"]:
        command.append("--continuous")
    if options["max_tasks_per_child"]:
        command.append(f"--max-tasks={options['max_tasks_per_child']}")
    if options["max_memory_per_child"]:
        command.append(f"--max-memory-per-child={options['max_memory_per_child']}")
    for flag in ("traceback", "no_color", "force_color"):
        if options.get(flag):
            command.append(f"--{flag.replace('_', '-')}")
    return command


def child_environment() -> dict[str, str]:
    """This process's environment, with the settings module it loaded and
    its import path, so that a child started from anywhere finds both."""
    path = [entry for entry in sys.path if entry]
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
        "PYTHONPATH": os.pathsep.join(path),
    }
