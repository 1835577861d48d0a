"""The worker command, in three shapes: one worker in this process (the
default), worker processes under a supervisor (``--processes``, see
``engine.supervisor``), or one worker restarted on code changes by Django's
autoreloader (``--reload``). Options live in ``management.worker_options``."""

import logging
import os
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.tasks import TaskResult, TaskResultStatus
from django.utils import autoreload

from django_database_task.backends import DatabaseTaskBackend
from django_database_task.engine.supervisor import (
    Supervisor,
    SupervisorLink,
    resident_megabytes,
)
from django_database_task.engine.worker import Worker
from django_database_task.log import console_logging
from django_database_task.management import worker_options

logger = logging.getLogger("django_database_task.worker")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Command(BaseCommand):
    help = (
        "Run tasks stored by DatabaseTaskBackend. On SIGTERM or SIGINT the "
        "running task finishes and the worker exits; a second signal exits at once."
    )

    def add_arguments(self, parser):
        worker_options.add_arguments(parser)

    def handle(self, *args, **options):
        backend, queue_names = worker_options.validate(options)
        with console_logging(self.stdout, self.stderr, options["verbosity"]):
            if options["processes"] is not None:
                code = _supervise(options, queue_names)
            elif options["reload"]:
                code = _reload(backend, queue_names, options)
            else:
                code = _run(_WorkerRun(backend, queue_names, options))
        if code:
            raise SystemExit(code)


def _exit_code(options: dict[str, Any], processed: int, failed: int) -> int:
    """The status --failed-exit-code or --empty-exit-code asks for, else 0
    (a failed task was processed: both never apply at once)."""
    if failed and options["failed_exit_code"]:
        logger.info(
            "%d task(s) failed: exit status %d.", failed, options["failed_exit_code"]
        )
        return options["failed_exit_code"]
    if not processed and options["empty_exit_code"]:
        logger.info("No task processed: exit status %d.", options["empty_exit_code"])
        return options["empty_exit_code"]
    return 0


class _WorkerRun:
    """One worker in this process, and what the command needs of its run:
    the failures, the memory limit, and the supervisor it reports to."""

    def __init__(
        self,
        backend: DatabaseTaskBackend,
        queue_names: list[str],
        options: dict[str, Any],
    ) -> None:
        self.options = options
        self.failed = 0
        self.signalled = False
        self.over_memory = False
        self.worker = Worker(
            backend,
            queue_names=queue_names,
            continuous=options["continuous"],
            interval=options["interval"],
            max_tasks=options["max_tasks"],
            concurrency=options["concurrency"],
            shutdown_timeout=options["shutdown_timeout"],
            on_result=self._on_result,
        )
        self.link: SupervisorLink | None = None
        if options["supervisor_fd"] is not None:
            try:
                self.link = SupervisorLink(
                    options["supervisor_fd"], self._supervisor_lost
                )
            except OSError as e:
                raise CommandError(f"No supervisor socket: {e}") from None

    def _on_result(self, result: TaskResult) -> None:
        failed = result.status == TaskResultStatus.FAILED
        self.failed += failed
        if self.link is not None:
            self.link.task_done(failed)
        limit = self.options["max_memory_per_child"]
        if limit and not self.over_memory:
            used = resident_megabytes()
            if used > limit:
                self.over_memory = True
                logger.info(
                    "Worker %s uses %d MiB, over --max-memory-per-child %d: "
                    "stopping after the running task(s), to be replaced.",
                    self.worker.worker_id,
                    used,
                    limit,
                )
                self.worker.stop()

    def _supervisor_lost(self) -> None:
        logger.warning(
            "Worker %s lost its supervisor; stopping after the running task(s).",
            self.worker.worker_id,
        )
        self.worker.stop()

    def stop_on_signal(self) -> None:
        self.signalled = True
        self.worker.stop()
        logger.info("Stopping after the running task(s); signal again to exit at once.")

    def work(self) -> int:
        """Run the worker; the exit status its run asks for."""
        worker = self.worker
        backend = worker.backend
        logger.info(
            "Worker %s started: backend %r, queues: %s, concurrency %d, "
            "heartbeat every %g s, rescue after %g s.",
            worker.worker_id,
            backend.alias,
            ", ".join(worker.queue_names) or "all",
            worker.concurrency,
            backend.heartbeat_interval,
            backend.rescue_after,
        )
        processed = worker.run()
        reached_max = bool(worker.max_tasks) and processed >= worker.max_tasks
        if self.link is not None and (self.over_memory or reached_max):
            self.link.recycle()
        if self.signalled:
            logger.info("Stopped on signal.")
        logger.info("Processed %d task(s).", processed)
        return _exit_code(self.options, processed, self.failed)


def _run(run: _WorkerRun) -> int:
    """The worker in this thread: the first SIGTERM or SIGINT stops it
    gracefully, a second unwinds it and the process dies of that signal."""
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def request_stop(signum, frame):
        if run.signalled:
            # Unwinds the worker, which leaves its unfinished tasks to the
            # rescue, then dies of the signal below.
            signal.signal(signum, signal.SIG_DFL)
            raise _SecondSignal(signum)
        run.stop_on_signal()

    for signum in STOP_SIGNALS:
        signal.signal(signum, request_stop)
    try:
        return run.work()
    except _SecondSignal as second:
        os.kill(os.getpid(), second.signum)
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _reload(
    backend: DatabaseTaskBackend, queue_names: list[str], options: dict[str, Any]
) -> int:
    """Django's autoreloader: this process (the parent) restarts a child
    running the worker whenever the child exits with status 3. The child
    stops its worker gracefully before a restart, on Ctrl-C and on SIGTERM;
    a second Ctrl-C ends it at once."""
    if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
        # Ctrl-C reaches the child as well (one process group); were the
        # parent to die of it, it would kill the child mid-task.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        connections.close_all()  # The system checks may have connected.
        # The parent never calls the function: it exits with the status of
        # the child that did not ask for a restart.
        autoreload.run_with_reloader(lambda: None)
    # The child inherits the parent's SIG_IGN.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run = _WorkerRun(backend, queue_names, options)
    finished = threading.Event()
    reloaders: list[autoreload.BaseReloader] = []

    def work() -> None:
        try:
            run.work()
        finally:
            finished.set()
            # Ends the reloader's loop: the worker stopped for good.
            for reloader in reloaders:
                reloader.stop()

    def watching(sender, **kwargs) -> None:
        reloaders.append(sender)
        if finished.is_set():
            sender.stop()

    def changed(sender, file_path, **kwargs) -> None:
        logger.info("%s changed: restarting after the running task(s).", file_path)
        run.worker.stop()
        finished.wait()
        # Returning nothing true lets Django restart the process.

    autoreload.autoreload_started.connect(watching, weak=False)
    autoreload.file_changed.connect(changed, weak=False)
    try:
        autoreload.run_with_reloader(work)
        # The worker's own crash, if that is what ended it.
        autoreload.raise_last_exception()
    finally:
        if not finished.is_set():
            run.stop_on_signal()
            try:
                finished.wait()
            except KeyboardInterrupt:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGINT)
    return 0


def _supervise(options: dict[str, Any], queue_names: list[str]) -> int:
    """Worker processes under a supervisor, which forwards stop signals; a
    second one ends the children at once and this process dies of it."""
    supervisor = Supervisor(
        worker_options.child_command(options, queue_names),
        processes=options["processes"],
        continuous=options["continuous"],
        env=worker_options.child_environment(),
    )
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def request_stop(signum, frame):
        if supervisor.stopping:
            logger.info("Stopping the worker processes at once.")
        else:
            logger.info(
                "Stopping the worker processes after their running task(s); "
                "signal again to stop them at once."
            )
        supervisor.request_stop(signum)

    # The system checks may have connected; the children have their own.
    connections.close_all()
    for signum in STOP_SIGNALS:
        signal.signal(signum, request_stop)
    logger.info(
        "Supervisor %d started: %d worker process(es) of concurrency %d.",
        os.getpid(),
        options["processes"],
        options["concurrency"],
    )
    try:
        summary = supervisor.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    logger.info(
        "Processed %d task(s) in %d worker process(es).",
        summary.processed,
        summary.children,
    )
    if len(summary.signals) > 1:
        signal.signal(summary.signals[-1], signal.SIG_DFL)
        os.kill(os.getpid(), summary.signals[-1])
    if summary.lost:
        raise CommandError(
            f"{summary.lost} worker process(es) died and were not replaced."
        )
    return _exit_code(options, summary.processed, summary.failed)


class _SecondSignal(KeyboardInterrupt):
    """A second stop signal: exit now. A KeyboardInterrupt, so that the task
    it interrupts does not catch it as its own failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
