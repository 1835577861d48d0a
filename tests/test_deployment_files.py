"""The files under deploy/ that run the workers in production (systemd
units, a Dockerfile and a compose file, Kubernetes manifests) are code too.
These tests read them as their tools would, check what they promise (a
worker stops within its grace period, probes exist, one image everywhere),
and run every command line in them against the example project, so that no
file can name an option, a path or a probe the code does not have.

How a command line of a file runs here:

- in the example project, which is what the files deploy: the image copies
  example/ to its WORKDIR, and the systemd units' WorkingDirectory stands
  for a checkout of it (``SYSTEMD_LAYOUT`` maps their paths onto this one);
- programs are found on PATH, the directory of the interpreter running these
  tests first, so ``python`` is this virtualenv's;
- with the environment the file gives it (the image's ENV, compose
  ``environment``, the Kubernetes ConfigMap, the systemd EnvironmentFile),
  but DATABASE_URL pointing at a SQLite file of the test's own, and test
  values for the Kubernetes secret. The test database (DATABASE_URL of the
  test run) is not used.
"""

import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.processes import free_port

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
EXAMPLE = ROOT / "example"
DOCS = ROOT / "docs" / "deployment.md"

UNIT = DEPLOY / "systemd" / "django-database-task-worker.service"
TEMPLATE_UNIT = DEPLOY / "systemd" / "django-database-task-worker@.service"
ENV_FILE = DEPLOY / "systemd" / "django-database-task.env"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "docker" / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes" / "worker.yaml"

# Where the systemd units expect things on a machine (docs/deployment.md),
# and where they are here. The runtime directory is a temporary one per test.
SYSTEMD_LAYOUT = {
    "/srv/django-app/.venv/bin/python": sys.executable,
    "/srv/django-app": str(EXAMPLE),
    "/etc/django-database-task/django-database-task.env": str(ENV_FILE),
}
RUNTIME_DIRECTORY = "/run/django-database-task"
# The queue the template unit is started for here: the example's tasks.
INSTANCE = "default"
# What a stop needs beyond the worker's --shutdown-timeout: storing the
# results of the tasks that finished and leaving the registry.
STOP_MARGIN = 10
# Values of the secret the Kubernetes pods read (DATABASE_URL is the test's).
SECRETS = {"DJANGO_SECRET_KEY": "kubernetes-test-secret"}
# Seconds any single command of a file may take here.
COMMAND_TIMEOUT = 120


# Reading the files, as their tools do ----------------------------------------


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit: section -> key -> its values in order (ExecStartPre
    and Environment may repeat). Comments, blank lines and backslash
    continuations as systemd reads them."""
    sections: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = sections.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}: {line!r} outside a section"
        key, equals, value = line.partition("=")
        assert equals, f"{path.name}: {line!r} is not key=value"
        section.setdefault(key.strip(), []).append(value.strip())
    return sections


def instantiate(unit: dict, instance: str) -> dict:
    """A template unit's values with %i replaced, as systemd does for
    name@instance.service; any other specifier is refused, so that the test
    never runs a command it did not understand."""

    def expand(value: str) -> str:
        def specifier(match: re.Match) -> str:
            letter = match.group(1)
            if letter == "%":
                return "%"
            assert letter == "i", f"specifier %{letter} in {value!r}"
            return instance

        return re.sub(r"%(.)", specifier, value)

    return {
        name: {key: [expand(v) for v in values] for key, values in section.items()}
        for name, section in unit.items()
    }


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as systemd's EnvironmentFile= reads them."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, equals, value = line.partition("=")
        assert equals, f"{path.name}: {line!r} is not KEY=VALUE"
        env[key.strip()] = value.strip().strip("\"'")
    return env


@dataclass
class Instruction:
    name: str
    arguments: str


def read_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with their continuation lines joined, comments dropped."""
    instructions = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        name, _, arguments = line.partition(" ")
        instructions.append(Instruction(name.upper(), arguments.strip()))
    assert not pending, f"{path.name} ends with a continuation"
    return instructions


def docker_command(text: str) -> list[str]:
    """CMD or HEALTHCHECK CMD: the exec form (a JSON array) runs as is, the
    shell form under /bin/sh -c."""
    if text.startswith("["):
        return json.loads(text)
    return ["/bin/sh", "-c", text]


def the(instructions: list[Instruction], name: str) -> Instruction:
    found = [i for i in instructions if i.name == name]
    assert len(found) == 1, f"the Dockerfile should have one {name}, has {found}"
    return found[0]


def image_environment(instructions: list[Instruction]) -> dict[str, str]:
    """ENV KEY=VALUE ... instructions."""
    env = {}
    for instruction in instructions:
        if instruction.name == "ENV":
            for pair in shlex.split(instruction.arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def healthcheck(instructions: list[Instruction]) -> tuple[dict[str, str], str]:
    """The HEALTHCHECK's options (--interval=30s...) and its CMD text."""
    text = the(instructions, "HEALTHCHECK").arguments
    options = {}
    while text.startswith("--"):
        option, _, text = text.partition(" ")
        key, _, value = option[2:].partition("=")
        options[key] = value
        text = text.strip()
    keyword, _, command = text.partition(" ")
    assert keyword == "CMD", f"HEALTHCHECK {text!r}"
    return options, command.strip()


def compose_file() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def kubernetes_documents() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(KUBERNETES.read_text()) if doc]


def kubernetes_object(kind: str) -> dict:
    found = [doc for doc in kubernetes_documents() if doc["kind"] == kind]
    assert len(found) == 1, f"worker.yaml should hold one {kind}"
    return found[0]


def seconds(duration: str | int | float) -> float:
    """A compose duration (45s, 1m30s, 500ms) or a number of seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def option(argv: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in a command line."""
    for index, arg in enumerate(argv):
        if arg == name:
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.partition("=")[2]
    return None


def shutdown_timeout(argv: list[str]) -> float:
    """The worker's --shutdown-timeout: the number its grace period is
    measured against, which a worker command must state."""
    value = option(argv, "--shutdown-timeout")
    assert value is not None, f"{argv}: state --shutdown-timeout"
    # It bounds the stop only with concurrency above 1; with 1, the running
    # task is waited for, however long it takes.
    assert int(option(argv, "--concurrency") or 1) > 1, (
        f"{argv}: --shutdown-timeout applies with --concurrency above 1"
    )
    return float(value)


# The command lines of the files ----------------------------------------------


@dataclass
class CommandLine:
    """A command line of a deployment file, with the environment and the
    working directory the file runs it with (the file's own paths)."""

    where: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    # False for the test's own commands (which hold URL paths, say).
    from_file: bool = True

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


def systemd_commands(unit_path: Path, instance: str | None = None) -> dict:
    """ExecStartPre and ExecStart of a unit (or of a template's instance),
    with its environment: the EnvironmentFile, then Environment= lines."""
    unit = read_unit(unit_path)
    if instance is not None:
        unit = instantiate(unit, instance)
    service = unit["Service"]
    env = {}
    for path in service.get("EnvironmentFile", []):
        assert path in SYSTEMD_LAYOUT, f"{unit_path.name}: unknown file {path}"
        env |= read_env_file(Path(SYSTEMD_LAYOUT[path]))
    for assignment in service.get("Environment", []):
        for pair in shlex.split(assignment):
            key, _, value = pair.partition("=")
            env[key] = value
    (cwd,) = service["WorkingDirectory"]
    name = unit_path.name.replace("@", f"@{instance}") if instance else unit_path.name

    def command(key: str, value: str) -> CommandLine:
        # Prefixes such as "-" (ignore failure) would change what a test of
        # the line means: none is used.
        assert value[0] not in "-@+!:", f"{name} {key}: prefix {value[0]!r}"
        return CommandLine(f"{name} {key}", shlex.split(value), env, cwd)

    return {
        "pre": [command("ExecStartPre", v) for v in service.get("ExecStartPre", [])],
        "start": command("ExecStart", the_one(service["ExecStart"], name)),
        "grace": float(the_one(service["TimeoutStopSec"], name)),
    }


def the_one(values: list[str], where: str) -> str:
    assert len(values) == 1, f"{where}: {values}"
    return values[0]


def image() -> dict:
    """What every container of the image shares: its ENV and WORKDIR, its
    CMD and HEALTHCHECK (with the image's environment and directory)."""
    instructions = read_dockerfile(DOCKERFILE)
    workdir = the(instructions, "WORKDIR").arguments
    env = image_environment(instructions)
    options, check = healthcheck(instructions)
    return {
        "instructions": instructions,
        "env": env,
        "workdir": workdir,
        "cmd": CommandLine(
            "Dockerfile CMD",
            docker_command(the(instructions, "CMD").arguments),
            env,
            workdir,
        ),
        "healthcheck": CommandLine(
            "Dockerfile HEALTHCHECK", docker_command(check), env, workdir
        ),
        "healthcheck_options": options,
    }


def compose_commands() -> dict[str, CommandLine]:
    """Per service of the application (the services built from the
    Dockerfile): its command (the image's CMD when it sets none) and its
    health check (the image's when it sets none), keyed "web",
    "web healthcheck"..."""
    built = image()
    commands = {}
    for name, service in compose_file()["services"].items():
        if "build" not in service:
            continue
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        env = built["env"] | {k: str(v) for k, v in environment.items()}
        where = f"compose.yaml services.{name}"
        if "command" in service:
            command = service["command"]
            argv = shlex.split(command) if isinstance(command, str) else command
            commands[name] = CommandLine(
                f"{where}.command", argv, env, built["workdir"]
            )
        else:
            commands[name] = CommandLine(
                f"{where} (image CMD)", built["cmd"].argv, env, built["workdir"]
            )
        check = service.get("healthcheck")
        if check is None:
            argv = built["healthcheck"].argv
        elif check.get("disable"):
            continue
        else:
            test = check["test"]
            if isinstance(test, str):
                argv = ["/bin/sh", "-c", test]
            elif test[0] == "CMD-SHELL":
                argv = ["/bin/sh", "-c", test[1]]
            else:
                assert test[0] == "CMD", f"{where}.healthcheck.test {test}"
                argv = test[1:]
        commands[f"{name} healthcheck"] = CommandLine(
            f"{where}.healthcheck", argv, env, built["workdir"]
        )
    return commands


def kubernetes_secret_keys() -> set[str]:
    """The keys of the secret the header of worker.yaml tells to create."""
    return set(re.findall(r"--from-literal=(\w+)=", KUBERNETES.read_text()))


def kubernetes_commands() -> dict[str, CommandLine]:
    """Every command of the Kubernetes objects: containers' command + args,
    init containers', probes' exec commands; keyed "Deployment worker",
    "Deployment worker livenessProbe", "Job migrate"... The secret's
    DATABASE_URL is left to ``Site``, which gives every command its own."""
    documents = kubernetes_documents()
    config_maps = {
        doc["metadata"]["name"]: doc.get("data", {})
        for doc in documents
        if doc["kind"] == "ConfigMap"
    }
    workdir = image()["workdir"]
    image_env = image()["env"]
    commands = {}
    for doc in documents:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            env = dict(image_env)
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    env |= config_maps[source["configMapRef"]["name"]]
                else:
                    env |= SECRETS | {"DATABASE_URL": ""}
            for variable in container.get("env", []):
                env[variable["name"]] = variable["value"]
            cwd = container.get("workingDir", workdir)
            key = f"{doc['kind']} {container['name']}"
            # The image has no ENTRYPOINT: every container states its command.
            argv = container["command"] + container.get("args", [])
            commands[key] = CommandLine(f"worker.yaml {key}", argv, env, cwd)
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in container:
                    commands[f"{key} {probe}"] = CommandLine(
                        f"worker.yaml {key} {probe}",
                        container[probe]["exec"]["command"],
                        env,
                        cwd,
                    )
    return commands


def is_this_host_probe(command: CommandLine) -> bool:
    """Whether the command runs ``check_database_tasks --this-host``."""
    pattern = r"\bmanage\.py check_database_tasks\b[^;|&]*\s--this-host(\s|;|$)"
    return any(re.search(pattern, arg) for arg in [command.text, *command.argv])


# Running them here -------------------------------------------------------------


class Site:
    """The example project on a SQLite file of its own, in ``directory``,
    where the command lines of the files run."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.database = directory / "db.sqlite3"
        self.database_url = f"sqlite:///{self.database}"
        self.runtime = directory / "run"
        self.processes: list[subprocess.Popen] = []
        self.logs = directory / "logs"
        self.logs.mkdir()

    def local(self, command: CommandLine) -> tuple[list[str], dict[str, str], Path]:
        """The command's argv, environment and working directory, with the
        file's paths replaced by this checkout's."""
        paths = {
            image()["workdir"]: str(EXAMPLE),
            RUNTIME_DIRECTORY: str(self.runtime),
            **SYSTEMD_LAYOUT,
        }

        def here(text: str) -> str:
            for there in sorted(paths, key=len, reverse=True):
                # A whole path or its start, never the middle of another.
                pattern = r"(?<![\w./-])" + re.escape(there) + r"(?![\w.-])"
                text = re.sub(pattern, paths[there], text)
            return text

        argv = [here(arg) for arg in command.argv]
        for arg in argv if command.from_file else []:
            if arg.startswith("/"):
                # A path the mapping missed would run something else.
                assert Path(arg).exists() or arg.startswith(str(self.directory)), (
                    f"{command.where}: no {arg} here"
                )
        env = {key: here(value) for key, value in command.env.items()}
        env |= {
            "DATABASE_URL": self.database_url,
            "PATH": os.pathsep.join(
                [str(Path(sys.executable).parent), os.environ["PATH"]]
            ),
            "HOME": str(self.directory),
            "TMPDIR": str(self.directory),
            "LANG": "C.UTF-8",
        }
        return argv, env, Path(here(command.cwd))

    def run(self, command: CommandLine, timeout: float = COMMAND_TIMEOUT):
        argv, env, cwd = self.local(command)
        return subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )

    def run_ok(self, command: CommandLine) -> subprocess.CompletedProcess:
        done = self.run(command)
        assert done.returncode == 0, (
            f"{command.where}: {command.text} exited {done.returncode}\n"
            f"{done.stdout}{done.stderr}"
        )
        return done

    def start(self, command: CommandLine) -> subprocess.Popen:
        """The command in the background, its output in files."""
        argv, env, cwd = self.local(command)
        name = f"{len(self.processes)}"
        with (
            open(self.logs / f"{name}.out", "w") as out,
            open(self.logs / f"{name}.err", "w") as err,
        ):
            process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        self.processes.append(process)
        return process

    def output(self, process: subprocess.Popen) -> str:
        name = self.processes.index(process)
        out = (self.logs / f"{name}.out").read_text()
        return out + (self.logs / f"{name}.err").read_text()

    def manage(self, *args: str, env: dict[str, str]) -> None:
        """``manage.py *args`` of the example project (not a command of the
        files): setting up what a test needs."""
        argv = ["python", "manage.py", *args]
        self.run_ok(CommandLine("test", argv, env, "/app", from_file=False))

    def tasks_left(self) -> int:
        """READY and RUNNING tasks, read from the file directly."""
        with sqlite3.connect(self.database, timeout=30) as connection:
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM django_database_task "
                "WHERE status IN ('READY', 'RUNNING')"
            ).fetchone()
        return count

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory) -> Path:
    """The example project's schema, migrated once and copied per test."""
    site = Site(tmp_path_factory.mktemp("migrated"))
    site.manage("migrate", "--noinput", "-v", "0", env={})
    return site.database


@pytest.fixture
def site(tmp_path, migrated_database):
    site = Site(tmp_path)
    shutil.copy(migrated_database, site.database)
    yield site
    site.stop_all()


@pytest.fixture
def fresh_site(tmp_path):
    """The example project with no database yet."""
    site = Site(tmp_path)
    yield site
    site.stop_all()


def wait_for(condition, *, timeout: float, what: str, process=None, site=None):
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds or
    as soon as ``process`` exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"exited ({process.returncode}) while waiting for {what}:\n"
                f"{site.output(process) if site else ''}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.2)


# A WSGI request to the application named by the web command, in a process of
# its own: what gunicorn would do with it, without a server.
WSGI_REQUEST = """
import importlib, io, sys
module, host, path, token = sys.argv[1:]
module, _, name = module.partition(":")
application = getattr(importlib.import_module(module), name or "application")
environ = {
    "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
    "SERVER_NAME": host, "SERVER_PORT": "80", "HTTP_HOST": host,
    "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
    "wsgi.errors": sys.stderr, "wsgi.multithread": False,
    "wsgi.multiprocess": True, "wsgi.run_once": False,
}
if token:
    environ["HTTP_AUTHORIZATION"] = "Bearer " + token
status = []
body = b"".join(application(environ, lambda s, headers: status.append(s)))
print(status[0])
print(body.decode())
"""


def wsgi_module(web: CommandLine) -> str:
    """The application module of the web command (gunicorn MODULE[:NAME])."""
    assert web.argv[0] == "gunicorn", f"{web.where}: {web.text}"
    return next(arg for arg in web.argv[1:] if not arg.startswith("-"))


def wsgi_get(site: Site, command: CommandLine, path: str, token: str = "") -> str:
    """GET ``path`` from the web command's application, with the command's
    environment; its status line and body."""
    host = command.env.get("DJANGO_ALLOWED_HOSTS", "localhost").split(",")[0]
    request = CommandLine(
        f"{command.where} (request)",
        ["python", "-c", WSGI_REQUEST, wsgi_module(image()["cmd"]), host, path, token],
        command.env,
        command.cwd,
        from_file=False,
    )
    return site.run_ok(request).stdout


# What the files promise ------------------------------------------------------


def test_every_yaml_file_under_deploy_parses():
    files = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert COMPOSE in files and KUBERNETES in files
    for path in files:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert documents, f"{path} holds nothing"
        assert all(isinstance(doc, dict) for doc in documents), path


@pytest.mark.parametrize("unit_path", [UNIT, TEMPLATE_UNIT], ids=lambda p: p.name)
def test_systemd_unit_stops_its_workers_gracefully(unit_path):
    unit = read_unit(unit_path)
    instance = INSTANCE if "@" in unit_path.name else None
    commands = systemd_commands(unit_path, instance)
    service = unit["Service"]
    worker = commands["start"].argv
    assert worker[1:3] == ["manage.py", "run_database_tasks"]
    assert "--continuous" in worker
    # systemd sends SIGTERM to the main process only (KillMode=mixed), waits
    # TimeoutStopSec, then SIGKILLs what is left.
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["KillMode"] == ["mixed"]
    assert commands["grace"] >= shutdown_timeout(worker) + STOP_MARGIN
    assert service["Restart"] == ["on-failure"]
    assert service["WorkingDirectory"][0].startswith("/")
    assert service["EnvironmentFile"]


@pytest.mark.parametrize("unit_path", [UNIT, TEMPLATE_UNIT], ids=lambda p: p.name)
def test_systemd_unit_creates_the_metrics_directory_of_the_environment_file(
    unit_path,
):
    env = read_env_file(ENV_FILE)
    commands = systemd_commands(unit_path, INSTANCE if "@" in unit_path.name else None)
    (mkdir,) = commands["pre"]
    assert mkdir.argv == ["/bin/mkdir", "-p", env["PROMETHEUS_MULTIPROC_DIR"]]
    # Inside the unit's RuntimeDirectory, which systemd creates for the
    # unit's user, and keeps when the unit stops (the web server reads it).
    service = read_unit(unit_path)["Service"]
    (runtime,) = service["RuntimeDirectory"]
    assert f"/run/{runtime}" == RUNTIME_DIRECTORY
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith(RUNTIME_DIRECTORY + "/")
    assert service["RuntimeDirectoryPreserve"] == ["yes"]


def test_template_unit_serves_the_queue_of_its_instance():
    commands = systemd_commands(TEMPLATE_UNIT, "emails")
    assert option(commands["start"].argv, "--queue") == "emails"


def test_dockerfile_builds_the_example_project_with_a_health_check():
    built = image()
    instructions = built["instructions"]
    assert instructions[0] == Instruction("FROM", "python:3.12-slim")
    # Every COPY source exists in the build context, the repository root
    # (compose.yaml builds with that context).
    copies = [shlex.split(i.arguments) for i in instructions if i.name == "COPY"]
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    # The project is copied into the WORKDIR, manage.py at its top: that is
    # why commands here run in example/.
    project = [
        sources for *sources, target in copies if target.rstrip("/") == built["workdir"]
    ]
    assert project == [["example/"]]
    assert (EXAMPLE / "manage.py").exists()
    # Exec form: the web server is PID 1 and gets SIGTERM itself.
    assert the(instructions, "CMD").arguments.startswith("[")
    assert "check_database_tasks" in built["healthcheck"].text
    options = built["healthcheck_options"]
    assert seconds(options["timeout"]) < seconds(options["interval"])
    # A numeric user: Kubernetes can check runAsNonRoot.
    assert the(instructions, "USER").arguments.isdigit()
    assert int(the(instructions, "USER").arguments) != 0


def test_compose_worker_stops_gracefully_and_is_probed_per_container():
    services = compose_file()["services"]
    worker = services["worker"]
    commands = compose_commands()
    argv = commands["worker"].argv
    assert argv[:3] == ["python", "manage.py", "run_database_tasks"]
    assert "--continuous" in argv
    # A list: the worker is the container's main process, no shell between
    # it and the stop signal.
    assert isinstance(worker["command"], list)
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    grace = seconds(worker["stop_grace_period"])
    assert grace >= shutdown_timeout(argv) + STOP_MARGIN
    assert is_this_host_probe(commands["worker healthcheck"])
    assert "-v 0" in commands["worker healthcheck"].text


def test_compose_runs_migrations_before_web_and_workers():
    services = compose_file()["services"]
    migrate = services["migrate"]
    assert migrate["command"][:3] == ["python", "manage.py", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_compose_application_services_share_one_image_built_from_the_dockerfile():
    services = compose_file()["services"]
    application = {name: s for name, s in services.items() if "build" in s}
    assert set(application) == {"migrate", "web", "worker"}
    assert len({s["image"] for s in application.values()}) == 1
    for service in application.values():
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == ROOT
        assert context / service["build"]["dockerfile"] == DOCKERFILE
    postgres = services["postgres"]
    assert postgres["image"].split(":")[0] == "postgres"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert application["worker"]["environment"]["DATABASE_URL"].startswith(
        "postgres://"
    )


def test_kubernetes_workers_stop_gracefully_and_are_probed():
    deployment = kubernetes_object("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    commands = kubernetes_commands()
    argv = commands["Deployment worker"].argv
    assert argv[:3] == ["python", "manage.py", "run_database_tasks"]
    assert "--continuous" in argv
    assert pod["terminationGracePeriodSeconds"] >= shutdown_timeout(argv) + STOP_MARGIN
    liveness = commands["Deployment worker livenessProbe"]
    readiness = commands["Deployment worker readinessProbe"]
    assert is_this_host_probe(liveness) and is_this_host_probe(readiness)
    for probe in ("livenessProbe", "readinessProbe"):
        # A probe that times out fails: give it room for Django's start-up.
        assert container[probe]["timeoutSeconds"] >= 10
    assert container["livenessProbe"]["initialDelaySeconds"] >= 10
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_kubernetes_objects_share_one_image_and_one_environment():
    documents = kubernetes_documents()
    assert [doc["kind"] for doc in documents] == ["ConfigMap", "Job", "Deployment"]
    containers = [
        container
        for doc in documents
        if doc["kind"] in ("Deployment", "Job")
        for container in doc["spec"]["template"]["spec"].get("initContainers", [])
        + doc["spec"]["template"]["spec"]["containers"]
    ]
    images = {container["image"] for container in containers}
    assert len(images) == 1
    # The image compose.yaml builds, pushed to a registry.
    (image_name,) = images
    repository = image_name.rpartition(":")[0].rpartition("/")[2]
    assert repository == compose_file()["services"]["worker"]["image"]
    secrets = {
        source["secretRef"]["name"]
        for container in containers
        for source in container["envFrom"]
        if "secretRef" in source
    }
    config_maps = {
        source["configMapRef"]["name"]
        for container in containers
        for source in container["envFrom"]
        if "configMapRef" in source
    }
    assert config_maps == {kubernetes_object("ConfigMap")["metadata"]["name"]}
    # The secret the header tells to create, with the keys the pods need.
    (secret,) = secrets
    assert f"kubectl create secret generic {secret}" in KUBERNETES.read_text()
    assert kubernetes_secret_keys() == {"DATABASE_URL", *SECRETS}


def test_kubernetes_job_migrates_and_workers_wait_for_it():
    commands = kubernetes_commands()
    assert commands["Job migrate"].argv[:3] == ["python", "manage.py", "migrate"]
    assert commands["Deployment wait-for-migrations"].argv == [
        "python",
        "manage.py",
        "migrate",
        "--check",
    ]


def test_deployment_guide_explains_every_file():
    guide = DOCS.read_text()
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            assert str(path.relative_to(ROOT)) in guide, f"{path} not in {DOCS.name}"


# What the files run ----------------------------------------------------------


def worker_cases():
    """Every worker command of the files, with the grace period the file
    gives it and the commands to run before it."""
    unit = systemd_commands(UNIT)
    template = systemd_commands(TEMPLATE_UNIT, INSTANCE)
    compose = compose_file()["services"]["worker"]
    deployment = kubernetes_object("Deployment")["spec"]["template"]["spec"]
    return {
        "systemd": (unit["start"], unit["grace"], unit["pre"]),
        "systemd-template": (template["start"], template["grace"], template["pre"]),
        "compose": (
            compose_commands()["worker"],
            seconds(compose["stop_grace_period"]),
            [],
        ),
        "kubernetes": (
            kubernetes_commands()["Deployment worker"],
            float(deployment["terminationGracePeriodSeconds"]),
            [],
        ),
    }


def this_host_probes(site: Site) -> list[CommandLine]:
    """The probes of all the files that check this host's workers."""
    probes = [
        command
        for command in [
            *compose_commands().values(),
            *kubernetes_commands().values(),
        ]
        if is_this_host_probe(command)
    ]
    assert len(probes) == 3  # compose worker, Kubernetes liveness and readiness
    return probes


@pytest.mark.parametrize(
    "case", ["systemd", "systemd-template", "compose", "kubernetes"]
)
def test_worker_command_runs_tasks_passes_probes_and_stops_on_sigterm(site, case):
    """The worker of each file, started as the file starts it: it runs the
    example's tasks, every --this-host probe passes while it runs, SIGTERM
    stops it within the file's grace period with status 0, and the probes
    fail once it has gone. Its log lines are JSON, as the files ask."""
    if case.startswith("systemd"):
        # The environment file turns on metrics, which need the extra.
        pytest.importorskip("prometheus_client")
    worker, grace, before = worker_cases()[case]
    site.manage("enqueue_examples", env=worker.env)
    for command in before:
        site.run_ok(command)
    probes = this_host_probes(site)
    for probe in probes:
        assert site.run(probe).returncode == 1, f"{probe.where} before the worker"

    process = site.start(worker)
    wait_for(
        lambda: site.tasks_left() == 0,
        timeout=60,
        what="the example tasks to run",
        process=process,
        site=site,
    )
    for probe in probes:
        done = site.run(probe)
        assert done.returncode == 0, f"{probe.where}: {done.stderr}"
        assert done.stdout == ""  # -v 0

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{worker.where} outlived its {grace} s") from None
    assert status == 0, site.output(process)
    assert time.monotonic() - started < grace

    for probe in probes:
        done = site.run(probe)
        assert done.returncode == 1, f"{probe.where} after the worker: {done.stderr}"

    records = [json.loads(line) for line in site.output(process).splitlines() if line]
    finished = [r for r in records if r["logger"] == "django_database_task.tasks"]
    assert sorted(r["status"] for r in finished) == ["FAILED"] + ["SUCCESSFUL"] * 5
    assert all(r["task_id"] and r["worker_id"] for r in finished)


def test_systemd_workers_metrics_are_served_by_the_web_server_of_the_host(site):
    """The unit's workers write their counters to PROMETHEUS_MULTIPROC_DIR
    (made by ExecStartPre); the web application, with the same environment
    file, adds them up at /tasks/metrics/."""
    pytest.importorskip("prometheus_client")
    unit = systemd_commands(UNIT)
    site.manage("enqueue_examples", env=unit["start"].env)
    for command in unit["pre"]:
        site.run_ok(command)
    process = site.start(unit["start"])
    wait_for(
        lambda: site.tasks_left() == 0,
        timeout=60,
        what="the example tasks to run",
        process=process,
        site=site,
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=unit["grace"]) == 0

    env = unit["start"].env
    web = CommandLine("the web server's unit", [], env, unit["start"].cwd)
    refused = wsgi_get(site, web, "/tasks/metrics/", token="wrong")
    assert refused.startswith("403")
    answer = wsgi_get(site, web, "/tasks/metrics/", token=env["TASK_METRICS_TOKEN"])
    assert answer.startswith("200")

    def total(metric: str) -> float:
        pattern = rf"^django_database_task_{metric}_total{{[^}}]*}} (\S+)$"
        return sum(float(v) for v in re.findall(pattern, answer, re.MULTILINE))

    assert total("tasks_succeeded") == 5
    assert total("tasks_failed") == 1


def test_probes_when_the_database_cannot_be_queried(site):
    """Exit status 3: Docker hears "unhealthy" (1), the Kubernetes liveness
    probe passes (a restart would not bring the database back), readiness
    fails."""
    site.database_url = f"sqlite:///{site.directory / 'missing' / 'db.sqlite3'}"
    compose = compose_commands()
    kubernetes = kubernetes_commands()
    plain = CommandLine(
        "test", ["python", "manage.py", "check_database_tasks"], {}, "/app", False
    )
    assert site.run(plain).returncode == 3
    expected = {
        "Dockerfile HEALTHCHECK": (image()["healthcheck"], 1),
        "compose worker healthcheck": (compose["worker healthcheck"], 1),
        "compose web healthcheck": (compose["web healthcheck"], 1),
        "Kubernetes liveness": (kubernetes["Deployment worker livenessProbe"], 0),
        "Kubernetes readiness": (kubernetes["Deployment worker readinessProbe"], 3),
    }
    for name, (probe, status) in expected.items():
        done = site.run(probe)
        assert done.returncode == status, f"{name}: {done.stdout}{done.stderr}"


def test_image_health_check_passes_without_workers(site):
    """The image's HEALTHCHECK (web containers keep it) asks only that the
    task table can be queried."""
    assert site.run(image()["healthcheck"]).returncode == 0
    assert site.run(compose_commands()["web healthcheck"]).returncode == 0


@pytest.mark.parametrize("source", ["compose", "kubernetes"])
def test_migrate_command_prepares_a_new_database(fresh_site, source):
    """The migrations of each file make an empty database ready: the
    workers' init container (migrate --check) fails before, passes after."""
    site = fresh_site
    kubernetes = kubernetes_commands()
    migrate = {
        "compose": compose_commands()["migrate"],
        "kubernetes": kubernetes["Job migrate"],
    }[source]
    wait = kubernetes["Deployment wait-for-migrations"]
    assert site.run(wait).returncode == 1
    site.run_ok(migrate)
    site.run_ok(wait)
    assert site.run(image()["healthcheck"]).returncode == 0


@pytest.mark.parametrize("source", ["compose", "kubernetes", "systemd"])
def test_settings_of_each_environment_pass_django_checks(site, source):
    """``manage.py check``, warnings included, in the environment each file
    gives the project (the systemd one turns on metrics)."""
    env = {
        "compose": compose_commands()["web"].env,
        "kubernetes": kubernetes_commands()["Deployment worker"].env,
        "systemd": systemd_commands(UNIT)["start"].env,
    }[source]
    if source == "systemd":
        pytest.importorskip("prometheus_client")
    site.manage("check", "--fail-level", "WARNING", env=env)


def test_web_command_serves_the_application(site):
    """The image's CMD names a WSGI application that answers requests in the
    compose web service's environment (DEBUG off)."""
    web = compose_commands()["web"]
    assert web.argv == image()["cmd"].argv
    assert web.env["DJANGO_DEBUG"] == "false"
    assert wsgi_get(site, web, "/admin/login/").startswith("200")
    assert wsgi_get(site, web, "/no-such-page/").startswith("404")


def test_web_command_runs_under_gunicorn(site):
    """The image's CMD itself, bound to 127.0.0.1 instead of 0.0.0.0:8000:
    gunicorn serves the admin's login page and stops on SIGTERM."""
    if not (Path(sys.executable).parent / "gunicorn").exists():
        pytest.skip("gunicorn is not installed here (the image installs it)")
    web = compose_commands()["web"]
    port = free_port()
    bind = option(web.argv, "--bind")
    assert bind == "0.0.0.0:8000"
    served = CommandLine(
        web.where,
        [arg if arg != bind else f"127.0.0.1:{port}" for arg in web.argv],
        web.env,
        web.cwd,
    )
    process = site.start(served)

    def login_page() -> bool:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/admin/login/", headers={"Host": "localhost"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    wait_for(
        login_page, timeout=30, what="gunicorn to serve", process=process, site=site
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert '"GET /admin/login/ HTTP/1.1" 200' in site.output(process)


def test_postgres_health_check_command_is_well_formed():
    """pg_isready with the compose file's options, against 127.0.0.1: any
    answer but 3 (bad parameters) shows the command line is right."""
    pg_isready = shutil.which("pg_isready")
    if pg_isready is None:
        pytest.skip("pg_isready is not installed here")
    test = compose_file()["services"]["postgres"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    done = subprocess.run(
        [pg_isready, *test[2:], "-h", "127.0.0.1", "-t", "3"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode in (0, 1, 2), done.stdout + done.stderr


@pytest.mark.parametrize(
    "unit_path, name",
    [
        (UNIT, UNIT.name),
        (TEMPLATE_UNIT, TEMPLATE_UNIT.name.replace("@", f"@{INSTANCE}")),
    ],
    ids=["unit", "template instance"],
)
def test_systemd_analyze_verifies_the_unit(tmp_path, unit_path, name):
    """``systemd-analyze verify`` on the unit, its paths mapped onto this
    checkout (it checks that the programs exist): no error, no warning."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    text = unit_path.read_text()
    for there, here in sorted(SYSTEMD_LAYOUT.items(), key=lambda p: -len(p[0])):
        text = text.replace(there, here)
    (tmp_path / unit_path.name).write_text(text)
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    ours = [
        line for line in done.stderr.splitlines() if unit_path.stem.rstrip("@") in line
    ]
    assert ours == []
