import os
import signal

from django.core.management.base import BaseCommand, CommandError
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResult
from django.tasks.exceptions import InvalidTaskBackend

from django_database_task.api import get_backend
from django_database_task.worker import Worker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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

    def handle(self, *args, **options):
        if not options["interval"] > 0:
            raise CommandError(
                f"--interval must be a number of seconds above 0, "
                f"not {options['interval']}."
            )
        if options["max_tasks"] < 0:
            raise CommandError(
                f"--max-tasks must be 0 (unlimited) or more, "
                f"not {options['max_tasks']}."
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
            on_result=self._report,
        )
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

        def request_stop(signum, frame):
            if worker.stopping:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            worker.stop()
            self.stdout.write(
                "Stopping after the running task; signal again to exit at once."
            )
            self.stdout.flush()

        for signum in STOP_SIGNALS:
            signal.signal(signum, request_stop)
        self.stdout.write(
            f"Worker {worker.worker_id} started: backend {backend.alias!r}, "
            f"queues: {', '.join(queue_names) or 'all'}."
        )
        self.stdout.flush()
        try:
            processed = worker.run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if worker.stopping:
            self.stdout.write("Stopped on signal.")
        self.stdout.write(f"Processed {processed} task(s).")

    def _report(self, result: TaskResult) -> None:
        style = (
            self.style.SUCCESS if result.status == "SUCCESSFUL" else self.style.ERROR
        )
        self.stdout.write(
            style(f"{result.status} {result.id} {result.task.module_path}")
        )
