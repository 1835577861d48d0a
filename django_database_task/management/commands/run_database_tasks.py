import logging
import os
import signal

from django.core.management.base import BaseCommand, CommandError
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS
from django.tasks.exceptions import InvalidTaskBackend

from django_database_task.api import get_backend
from django_database_task.engine.worker import Worker
from django_database_task.log import console_logging
from django_database_task.validation import check_text

logger = logging.getLogger("django_database_task.worker")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
MAX_CONCURRENCY = 1000
# A day: longer waits gain nothing, and select() cannot wait forever.
MAX_INTERVAL = 86_400


class Command(BaseCommand):
    help = (
        "Run tasks stored by DatabaseTaskBackend. On SIGTERM or SIGINT the "
        "running task finishes and the worker exits; a second signal exits at once."
    )

    def add_arguments(self, parser):
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

    def handle(self, *args, **options):
        if not 0 < options["interval"] <= MAX_INTERVAL:
            raise CommandError(
                f"--interval must be a number of seconds above 0 and at most "
                f"{MAX_INTERVAL}, not {options['interval']}."
            )
        if options["max_tasks"] < 0:
            raise CommandError(
                f"--max-tasks must be 0 (unlimited) or more, "
                f"not {options['max_tasks']}."
            )
        if not 1 <= options["concurrency"] <= MAX_CONCURRENCY:
            raise CommandError(
                f"--concurrency must be from 1 to {MAX_CONCURRENCY}, "
                f"not {options['concurrency']}."
            )
        if not 0 <= options["shutdown_timeout"] <= MAX_INTERVAL:
            raise CommandError(
                f"--shutdown-timeout must be a number of seconds from 0 to "
                f"{MAX_INTERVAL}, not {options['shutdown_timeout']}."
            )
        try:
            backend = get_backend(options["backend"])
        except InvalidTaskBackend as e:
            raise CommandError(str(e)) from None
        queue_names = [
            name.strip()
            for value in options["queue"]
            for name in value.split(",")
            if name.strip()
        ]
        for name in queue_names:
            try:
                check_text(name, "--queue")
            except ValueError as e:
                raise CommandError(str(e)) from None
        unknown = [
            name
            for name in queue_names
            if backend.queues and name not in backend.queues
        ]
        if unknown:
            raise CommandError(
                f"Queue {unknown[0]!r} is not in the QUEUES of backend "
                f"{backend.alias!r} ({', '.join(sorted(backend.queues))})."
            )
        worker = Worker(
            backend,
            queue_names=queue_names,
            continuous=options["continuous"],
            interval=options["interval"],
            max_tasks=options["max_tasks"],
            concurrency=options["concurrency"],
            shutdown_timeout=options["shutdown_timeout"],
        )
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

        def request_stop(signum, frame):
            if worker.stopping:
                # Unwinds the worker, which leaves its unfinished tasks to the
                # rescue, then dies of the signal below.
                signal.signal(signum, signal.SIG_DFL)
                raise _SecondSignal(signum)
            worker.stop()
            logger.info(
                "Stopping after the running task(s); signal again to exit at once."
            )

        with console_logging(self.stdout, self.stderr, options["verbosity"]):
            for signum in STOP_SIGNALS:
                signal.signal(signum, request_stop)
            logger.info(
                "Worker %s started: backend %r, queues: %s, concurrency %d, "
                "heartbeat every %g s, rescue after %g s.",
                worker.worker_id,
                backend.alias,
                ", ".join(queue_names) or "all",
                worker.concurrency,
                backend.heartbeat_interval,
                backend.rescue_after,
            )
            try:
                processed = worker.run()
            except _SecondSignal as second:
                os.kill(os.getpid(), second.signum)
                raise
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
            if worker.stopping:
                logger.info("Stopped on signal.")
            logger.info("Processed %d task(s).", processed)


class _SecondSignal(KeyboardInterrupt):
    """A second stop signal: exit now. A KeyboardInterrupt, so that the task
    it interrupts does not catch it as its own failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
