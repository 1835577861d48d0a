"""Real worker processes for tests: started on the test database, watched
until something holds; and database servers of a test's own, which it may
stop and start at will without touching the shared ones."""

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "django", *args]


def _env(env: dict) -> dict:
    return env | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def start_worker(env: dict, *args: str) -> subprocess.Popen:
    """``manage.py run_database_tasks *args`` in a process of its own."""
    return subprocess.Popen(
        _command("run_database_tasks", *args),
        cwd=ROOT,
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, worker: subprocess.Popen, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail if the worker exits first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or worker.poll() is not None:
            worker.kill()
            raise AssertionError(f"worker did not get there: {worker.communicate()}")
        time.sleep(0.05)


def backend_options(settings, env: dict, **options) -> dict:
    """Give the default backend ``options`` in this test (``settings`` is
    pytest-django's fixture) and in the workers it starts with the returned
    environment (tests/settings.py reads DDT_TEST_TASK_OPTIONS), so that
    both enqueue and run with the same retries and timings."""
    default = settings.TASKS["default"]
    settings.TASKS = settings.TASKS | {
        "default": default | {"OPTIONS": default.get("OPTIONS", {}) | options}
    }
    return env | {"DDT_TEST_TASK_OPTIONS": json.dumps(options)}


def run_django(env: dict, *args: str, timeout: float = 120) -> str:
    """``manage.py *args`` to completion; its stdout, or a failure with its
    output."""
    done = subprocess.run(
        _command(*args),
        cwd=ROOT,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise AssertionError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def run_command(
    env: dict, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``manage.py *args`` to completion, whatever its exit status."""
    return subprocess.run(
        _command(*args),
        cwd=ROOT,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_numbers = itertools.count(1)


class LoggedWorker:
    """``run_database_tasks *args`` writing its output to files in
    ``directory``: a long run never blocks on a full pipe, and the log can be
    read at the end."""

    def __init__(self, env: dict, directory: Path, *args: str) -> None:
        name = f"worker-{next(_numbers)}"
        self.out_path = directory / f"{name}.out"
        self.err_path = directory / f"{name}.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.process = subprocess.Popen(
                _command("run_database_tasks", *args),
                cwd=ROOT,
                env=_env(env),
                stdout=out,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def id_prefix(self) -> str:
        """How the ids of this process's worker begin (``registry.make_worker_id``)."""
        return f"{socket.gethostname()}:{self.pid}:"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a machine or the OOM killer ends it."""
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then its exit status once it has finished."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker {self.pid} ignored SIGTERM") from None

    def output(self) -> str:
        return self.out_path.read_text()

    def errors(self) -> str:
        return self.err_path.read_text()

    def __repr__(self) -> str:
        return f"<worker {self.pid} {self.process.returncode=}>"


def wait_until(
    condition: Callable[[], object],
    *,
    timeout: float,
    workers: Sequence[LoggedWorker] = (),
    what: str = "the condition",
) -> object:
    """Poll ``condition`` until it returns something true, and return it;
    fail after ``timeout`` seconds, or at once if one of ``workers`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for worker in workers:
            if not worker.alive():
                raise AssertionError(
                    f"{worker} exited while waiting for {what}: {worker.errors()}"
                )
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateServer:
    """A database server of the test's own, on a free port of 127.0.0.1 with
    its data in a temporary directory. ``destroy`` ends it and removes
    everything, whatever state it is in."""

    scheme = ""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix=f"ddt-{self.scheme}-"))
        self.data = self.directory / "data"

    @classmethod
    def missing(cls) -> str | None:
        """Why this server cannot run here, or None."""
        raise NotImplementedError

    def url(self, database: str) -> str:
        raise NotImplementedError

    def setup(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def destroy(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def connect(self, database: str):
        """A DB-API connection in autocommit."""
        raise NotImplementedError

    def create_database(self, database: str) -> None:
        raise NotImplementedError

    def query(self, database: str, sql: str) -> list[tuple]:
        """Run one statement on a fresh connection: the test's view, which
        never holds a connection across a restart."""
        connection = self.connect(database)
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()


def _postgres_bin() -> Path | None:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name.split(".")[0]),
    )
    return found[-1].parent if found else None


class PrivatePostgres(PrivateServer):
    """initdb and pg_ctl run as the ``postgres`` OS user, which PostgreSQL
    requires when the tests run as root."""

    scheme = "postgres"

    def __init__(self) -> None:
        super().__init__()
        self.bin = _postgres_bin()
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")

    @classmethod
    def missing(cls) -> str | None:
        if _postgres_bin() is None:
            return "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
        if os.geteuid() == 0 and not shutil.which("runuser"):
            return "runuser is needed to run PostgreSQL as root"
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "psycopg is not installed"
        return None

    def _run(self, *command: str) -> None:
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise AssertionError(f"{command} failed: {done.stdout}{done.stderr}")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def setup(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            *("-D", str(self.data), "-A", "trust", "-U", "postgres"),
            *("--no-sync", "--no-instructions"),
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} "
            "-c listen_addresses=127.0.0.1 -c fsync=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            *("-D", str(self.data), "-o", options),
            *("-l", str(self.directory / "server.log"), "-w", "-t", "60", "start"),
        )

    def stop(self) -> None:
        """A fast shutdown: sessions are ended mid-statement, as in a failover."""
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
        )

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError):
                self._run(
                    str(self.bin / "pg_ctl"),
                    *("-D", str(self.data), "-m", "immediate", "-w", "stop"),
                )
        super().destroy()

    def connect(self, database: str):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, database: str) -> None:
        self.query("postgres", f'CREATE DATABASE "{database}"')


class PrivateMariaDB(PrivateServer):
    """mariadbd with no option files (so nothing of the shared server's
    configuration applies), its socket and pid file in its own directory."""

    scheme = "mysql"
    MARIADBD = "/usr/sbin/mariadbd"

    def __init__(self) -> None:
        super().__init__()
        self.process: subprocess.Popen | None = None

    @classmethod
    def missing(cls) -> str | None:
        if not Path(cls.MARIADBD).exists():
            return f"no MariaDB server at {cls.MARIADBD}"
        if not shutil.which("mariadb-install-db"):
            return "mariadb-install-db is not installed"
        try:
            import MySQLdb  # noqa: F401
        except ImportError:
            return "mysqlclient is not installed"
        return None

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def setup(self) -> None:
        done = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.data}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise AssertionError(f"mariadb-install-db failed: {done.stderr}")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.MARIADBD,
                "--no-defaults",
                f"--datadir={self.data}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.directory / 'mariadb.sock'}",
                f"--pid-file={self.directory / 'mariadb.pid'}",
                f"--log-error={self.directory / 'server.log'}",
                "--user=root",
                "--skip-grant-tables",
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.connect("mysql").close()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "server.log").read_text()
                    raise AssertionError(f"mariadbd did not start: {log}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM: the server ends every session and shuts down cleanly."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=120)

    def destroy(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        super().destroy()

    def connect(self, database: str):
        import MySQLdb

        connection = MySQLdb.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            database=database,
            connect_timeout=5,
        )
        connection.autocommit(True)
        return connection

    def create_database(self, database: str) -> None:
        self.query("mysql", f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
