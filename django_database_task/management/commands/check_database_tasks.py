import socket
from datetime import timedelta
from typing import NoReturn

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS
from django.tasks.exceptions import InvalidTaskBackend

from django_database_task.api import get_backend
from django_database_task.backends import DatabaseTaskBackend
from django_database_task.durations import format_duration, parse_duration
from django_database_task.health import Limits, check_health
from django_database_task.validation import option_names

UNHEALTHY = 1
BAD_OPTIONS = 2
DATABASE_DOWN = 3
# A year: longer limits mean nothing to a probe, and overflow datetimes.
MAX_DURATION = timedelta(days=365)
# The option behind each limit, named after a failed check.
OPTIONS = {
    "min_workers": "--min-workers",
    "host": "--this-host",
    "max_heartbeat_age": "--max-heartbeat-age",
    "max_age": "--max-age",
    "max_backlog": "--max-backlog",
}


class Command(BaseCommand):
    help = (
        "Check that the task queues are served and keep up, for health probes. "
        "Exit status: 0 healthy, 1 unhealthy (a line per failed check on "
        "stderr), 2 bad options, 3 database unreachable."
    )
    # A probe runs every few seconds: the system checks would slow each run,
    # and their failure would read as an unhealthy queue (exit status 1).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--backend",
            default=DEFAULT_TASK_BACKEND_ALIAS,
            help='Backend name (default: "default").',
        )
        parser.add_argument(
            "--queue",
            action="append",
            default=[],
            help="Queue name to check (all queues if not specified). Repeat the "
            "option or separate names with commas for several queues.",
        )
        parser.add_argument(
            "--this-host",
            action="store_true",
            help="Require a live worker registered from this machine's host "
            "name: the liveness probe of a worker container.",
        )
        parser.add_argument(
            "--min-workers",
            type=int,
            default=0,
            help="Require this many live workers (on each --queue) "
            "(default: 0, not checked).",
        )
        parser.add_argument(
            "--max-age",
            help="Fail when the oldest due READY task has waited longer than "
            "this: 90s, 15m, 2h, 1d, or plain seconds.",
        )
        parser.add_argument(
            "--max-backlog",
            type=int,
            help="Fail when more than this many READY tasks are due.",
        )
        parser.add_argument(
            "--max-heartbeat-age",
            help="With --this-host: fail when the freshest heartbeat of this "
            "host's workers is older than this (default: the backend's "
            "RESCUE_AFTER).",
        )

    def handle(self, *args, **options):
        backend, limits, queue_names = _parse(options)
        try:
            health = check_health(backend, limits, queue_names)
        except DatabaseError as e:
            # Drivers' messages run over several lines; a probe log wants one.
            reason = (str(e).strip().splitlines() or [""])[0]
            self._exit(
                DATABASE_DOWN,
                [
                    f"database {backend.database!r} of backend {backend.alias!r} "
                    f"cannot be queried: {type(e).__name__}: {reason}"
                ],
            )
        if health.problems:
            self._exit(
                UNHEALTHY,
                [
                    f"{problem.message} ({OPTIONS[problem.limit]})"
                    for problem in health.problems
                ],
            )
        if options["verbosity"] >= 1:
            self.stdout.write(f"OK: {health.summary}")

    def _exit(self, status: int, lines: list[str]) -> NoReturn:
        """Report on stderr and exit with ``status``, without the
        "CommandError:" prefix that would make a probe's log read as a crash."""
        for line in lines:
            self.stderr.write(line)
        raise SystemExit(status)


def _parse(options: dict) -> tuple[DatabaseTaskBackend, Limits, list[str]]:
    """The backend, limits and queue names the options ask for; a
    CommandError with exit status 2 if they make no sense."""
    try:
        queue_names = option_names(options["queue"], "--queue")
        backend = get_backend(options["backend"])
        max_age = _duration(options["max_age"], "--max-age")
        max_heartbeat_age = _duration(
            options["max_heartbeat_age"], "--max-heartbeat-age"
        )
    except (ValueError, InvalidTaskBackend) as e:
        raise CommandError(str(e), returncode=BAD_OPTIONS) from None
    for name in ("min_workers", "max_backlog"):
        if options[name] is not None and options[name] < 0:
            raise CommandError(
                f"--{name.replace('_', '-')} must be 0 or more, not {options[name]}.",
                returncode=BAD_OPTIONS,
            )
    unknown = [
        name for name in queue_names if backend.queues and name not in backend.queues
    ]
    if unknown:
        raise CommandError(
            f"Queue {unknown[0]!r} is not in the QUEUES of backend "
            f"{backend.alias!r} ({', '.join(sorted(backend.queues))}).",
            returncode=BAD_OPTIONS,
        )
    if max_heartbeat_age is not None:
        if not options["this_host"]:
            raise CommandError(
                "--max-heartbeat-age applies to the workers of this host: "
                "add --this-host.",
                returncode=BAD_OPTIONS,
            )
        # As RESCUE_AFTER: a live worker between two heartbeats must pass.
        shortest = 2 * backend.heartbeat_interval
        if max_heartbeat_age.total_seconds() < shortest:
            raise CommandError(
                f"--max-heartbeat-age must be at least {shortest:g}s, twice the "
                f"HEARTBEAT_INTERVAL of backend {backend.alias!r}, or a live "
                f"worker would fail it between heartbeats; not "
                f"{format_duration(max_heartbeat_age)}.",
                returncode=BAD_OPTIONS,
            )
    limits = Limits(
        min_workers=options["min_workers"],
        host=socket.gethostname() if options["this_host"] else None,
        max_heartbeat_age=max_heartbeat_age,
        max_age=max_age,
        max_backlog=options["max_backlog"],
    )
    return backend, limits, queue_names


def _duration(text: str | None, option: str) -> timedelta | None:
    return None if text is None else parse_duration(text, option, MAX_DURATION)
