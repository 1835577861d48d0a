"""Several worker processes under one supervisor (``--processes``).

Each child is a fresh interpreter running the worker command (a subprocess,
not a fork: the parent may have threads, and a child must share none of its
state or connections). The supervisor holds no database connection and is not
in the registry; its children are ordinary workers that register, heartbeat
and are rescued like any other.

A child reports to the supervisor over a socket passed to it
(``REPORT_FD_OPTION``): a byte per finished task, and one more when it stops
to be recycled. The supervisor never writes, so the child's end reads EOF
only when the supervisor is gone: the child then stops gracefully instead of
running on unsupervised.

Children run in process groups of their own, so that a terminal's Ctrl-C
reaches them once, forwarded, rather than twice (which means "exit at once").
"""

import logging
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from .waker import Waker

logger = logging.getLogger("django_database_task.worker")

REPORT_FD_OPTION = "--supervisor-fd"
TASK_DONE = b"."
TASK_FAILED = b"F"
RECYCLE = b"R"

FIRST_PAUSE = 1.0
MAX_PAUSE = 60.0
# A child that lived this long was not crash-looping: the pause starts over.
STABLE_AFTER = 60.0


def restart_pause(previous: float, lived: float) -> float:
    """Seconds to wait before replacing a child that died after ``lived``
    seconds, when the last pause was ``previous``: none after a long life,
    else 1 s doubling up to 60 s, so that a crash loop does not spin."""
    if lived >= STABLE_AFTER:
        return 0.0
    return min(MAX_PAUSE, previous * 2) if previous else FIRST_PAUSE


def resident_megabytes() -> float:
    """This process's resident memory in MiB: current where /proc tells it,
    else the peak (ru_maxrss: bytes on macOS, KiB elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        with suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


@dataclass
class Summary:
    """What the children did, as far as their reports tell."""

    processed: int = 0
    failed: int = 0
    children: int = 0
    # Children that died unexpectedly and were not replaced.
    lost: int = 0
    signals: list[int] = field(default_factory=list)


@dataclass(eq=False)
class _Child:
    process: subprocess.Popen
    reports: socket.socket
    started: float
    processed: int = 0
    recycle: bool = False
    eof: bool = False
    signals_sent: int = 0


@dataclass(eq=False)
class _Slot:
    child: _Child | None = None
    # When to start a child in this slot; None: the slot is done.
    start_at: float | None = 0.0
    pause: float = 0.0


class Supervisor:
    """Runs ``processes`` copies of ``command``, replacing those that die or
    ask to be recycled, until every slot is done: in a one-shot run, when its
    child exited 0; in a continuous one, after ``request_stop``."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        processes: int,
        continuous: bool,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.continuous = continuous
        self.env = dict(env) if env is not None else None
        self.summary = Summary()
        self._slots = [_Slot() for _ in range(processes)]
        self._waker = Waker()

    def request_stop(self, signum: int) -> None:
        """Forward ``signum`` to every child (the first stops them
        gracefully, a second at once) and start none; safe in a signal
        handler."""
        self.summary.signals.append(signum)
        self._waker.wake()

    @property
    def stopping(self) -> bool:
        return bool(self.summary.signals)

    def run(self) -> Summary:
        """Supervise until done; must run in the main thread (SIGCHLD)."""
        previous = signal.signal(
            signal.SIGCHLD, lambda signum, frame: self._waker.wake()
        )
        try:
            while True:
                self._forward_signals()
                self._start_due()
                live = [slot.child for slot in self._slots if slot.child]
                if not live and all(slot.start_at is None for slot in self._slots):
                    return self.summary
                readable = self._waker.wait(
                    self._timeout(),
                    [child.reports.fileno() for child in live if not child.eof],
                )
                for child in live:
                    if child.reports.fileno() in readable:
                        self._read_reports(child)
                self._reap()
        finally:
            signal.signal(signal.SIGCHLD, previous)

    def _timeout(self) -> float:
        """Until the next child is due to start; children's exits (SIGCHLD),
        reports and stop signals wake the wait sooner."""
        due = [
            slot.start_at
            for slot in self._slots
            if slot.child is None and slot.start_at is not None
        ]
        return max(0.0, min(due) - time.monotonic()) if due else MAX_PAUSE

    def _forward_signals(self) -> None:
        """Send each child the stop signals it has not had yet; once
        stopping, no slot waits for a replacement."""
        for slot in self._slots:
            child = slot.child
            while child and child.signals_sent < len(self.summary.signals):
                with suppress(ProcessLookupError):
                    child.process.send_signal(self.summary.signals[child.signals_sent])
                child.signals_sent += 1
            if self.stopping and slot.child is None:
                slot.start_at = None

    def _start_due(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        for slot in self._slots:
            if (
                slot.child is None
                and slot.start_at is not None
                and slot.start_at <= now
            ):
                slot.child = self._start()

    def _start(self) -> _Child:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [*self.command, REPORT_FD_OPTION, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=self.env,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self.summary.children += 1
        logger.debug("Started worker process %d.", process.pid)
        return _Child(process, ours, time.monotonic())

    def _read_reports(self, child: _Child) -> None:
        while True:
            try:
                data = child.reports.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                child.eof = True
                return
            failed = data.count(TASK_FAILED)
            done = failed + data.count(TASK_DONE)
            child.processed += done
            self.summary.processed += done
            self.summary.failed += failed
            child.recycle = child.recycle or RECYCLE in data

    def _reap(self) -> None:
        for slot in self._slots:
            child = slot.child
            if child is None or child.process.poll() is None:
                continue
            self._read_reports(child)
            child.reports.close()
            slot.child = None
            slot.start_at = self._next_start(slot, child)

    def _next_start(self, slot: _Slot, child: _Child) -> float | None:
        """When to replace the child that just exited, logging why; None to
        leave its slot empty."""
        returncode = child.process.returncode
        pid = child.process.pid
        now = time.monotonic()
        if self.stopping:
            forwarded = [-signum for signum in self.summary.signals]
            if returncode not in (0, *forwarded):
                self.summary.lost += 1
                logger.error(
                    "Worker process %d ended with %s while stopping.",
                    pid,
                    describe_exit(returncode),
                )
            return None
        if returncode == 0 and child.recycle:
            logger.info(
                "Worker process %d recycled after %d task(s); starting a fresh one.",
                pid,
                child.processed,
            )
            return now
        if not self.continuous:
            if returncode:
                self.summary.lost += 1
                logger.error(
                    "Worker process %d died (%s); a one-shot run does not replace it.",
                    pid,
                    describe_exit(returncode),
                )
            return None
        slot.pause = restart_pause(slot.pause, now - child.started)
        logger.warning(
            "Worker process %d ended (%s) after %.1f s; restarting it in %g s.",
            pid,
            describe_exit(returncode),
            now - child.started,
            slot.pause,
        )
        return now + slot.pause


class SupervisorLink:
    """A supervised worker's end of its socket: reports its tasks, asks to be
    recycled, and calls ``on_lost`` (from a thread of its own) if the
    supervisor goes away."""

    def __init__(self, fd: int, on_lost: Callable[[], None]) -> None:
        self._socket = socket.socket(fileno=fd)
        threading.Thread(
            target=self._watch, args=(on_lost,), name="supervisor-link", daemon=True
        ).start()

    def _watch(self, on_lost: Callable[[], None]) -> None:
        # The supervisor never writes: this returns when it is gone.
        with suppress(OSError):
            self._socket.recv(1)
        on_lost()

    def task_done(self, failed: bool) -> None:
        self._send(TASK_FAILED if failed else TASK_DONE)

    def recycle(self) -> None:
        self._send(RECYCLE)

    def _send(self, data: bytes) -> None:
        # A vanished supervisor is the watcher's business.
        with suppress(OSError):
            self._socket.sendall(data)
