"""A PgBouncer of a test's own, for deployments whose database connections
go through one in transaction pooling mode."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.processes import free_port


class PgBouncer:
    """A PgBouncer of the test's own in transaction pooling mode, on a free
    port of 127.0.0.1, in front of the PostgreSQL server at ``server_port``.
    It refuses to run as root, so it runs as the ``postgres`` OS user then."""

    BINARY = "/usr/sbin/pgbouncer"

    def __init__(self, server_port: int) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="ddt-pgbouncer-"))
        self.pidfile = self.directory / "pgbouncer.pid"
        (self.directory / "userlist.txt").write_text('"postgres" ""\n')
        (self.directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={server_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.directory / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            "default_pool_size = 10\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
            f"pidfile = {self.pidfile}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")

    @classmethod
    def missing(cls) -> str | None:
        """Why PgBouncer cannot run here, or None."""
        if not Path(cls.BINARY).exists():
            return f"no PgBouncer at {cls.BINARY} (apt-get install pgbouncer)"
        if os.geteuid() == 0 and not shutil.which("runuser"):
            return "runuser is needed to run PgBouncer as root"
        return None

    def start(self) -> None:
        command = [self.BINARY, "-d", str(self.directory / "pgbouncer.ini")]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if time.monotonic() > deadline:
                log = (self.directory / "pgbouncer.log").read_text()
                raise AssertionError(f"pgbouncer did not start: {log}")
            time.sleep(0.05)

    def destroy(self) -> None:
        """End it (by the pid it wrote) and remove its files."""
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(self.pidfile.read_text()), signal.SIGTERM)
        shutil.rmtree(self.directory, ignore_errors=True)
