"""An idle wait that a signal handler, another thread or a readable file
descriptor (a LISTEN connection) can end at once."""

import os
import select
import weakref
from collections.abc import Sequence
from contextlib import suppress


def _close(*fds: int) -> None:
    for fd in fds:
        with suppress(OSError):
            os.close(fd)


class Waker:
    """A self-pipe. Its descriptors live as long as the Waker does, so that
    ``wake()`` is safe at any time, even after the wait it was meant for."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self.woken = False
        weakref.finalize(self, _close, self._read, self._write)

    def wait(self, timeout: float, watch: Sequence[int] = ()) -> list[int]:
        """Sleep up to ``timeout`` seconds, or until woken or one of the
        ``watch`` descriptors is readable; returns those that are."""
        readable, _, _ = select.select([self._read, *watch], [], [], timeout)
        # Whether that wait was ended by wake(), for callers that wait in steps.
        self.woken = self._read in readable
        if self.woken:
            with suppress(BlockingIOError):
                while os.read(self._read, 512):
                    pass
        return [fd for fd in readable if fd != self._read]

    def wake(self) -> None:
        # A full pipe means the waiter wakes anyway.
        with suppress(BlockingIOError):
            os.write(self._write, b"\0")
