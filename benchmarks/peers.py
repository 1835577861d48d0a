"""This checkout against other database queues for django.tasks, in one run.

    .venv/bin/python benchmarks/peers.py --database postgres --tasks 2000

Each queue gets its own virtual environment (under /tmp/ddt-peers, reused
between runs), a throwaway project and its own scratch database. The same
driver enqueues ``--tasks`` no-op tasks one by one and then times one worker
process of that queue draining them; the worker's start-up is included, the
same for every queue. Prints JSON with tasks per second and the ratios of this
checkout to each peer.
"""

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path("/tmp/ddt-peers")
DJANGO = "Django>=6.1,<6.2"

QUEUES = {
    "this checkout": {
        # Rebuilt each run: the version number does not change with the code.
        "install": ["--force-reinstall", "--no-deps", f"{ROOT}"],
        "app": "django_database_task",
        "backend": "django_database_task.backends.DatabaseTaskBackend",
        "worker": ["run_database_tasks", "--verbosity", "0"],
    },
    "django-database-task 0.6.0": {
        "install": ["django-database-task==0.6.0"],
        "app": "django_database_task",
        "backend": "django_database_task.backends.DatabaseTaskBackend",
        "worker": ["run_database_tasks", "--verbosity", "0"],
    },
    "django-tasks-db 0.13.0": {
        "install": ["django-tasks-db==0.13.0"],
        "app": "django_tasks_db",
        "label": "django_tasks_database",
        "backend": "django_tasks_db.DatabaseBackend",
        "worker": ["db_worker", "--batch", "--no-startup-delay", "--verbosity", "0"],
    },
}

DATABASES = {
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": "postgres",
    },
    "sqlite": {"ENGINE": "django.db.backends.sqlite3"},
}

DRIVER = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    from django.apps import apps
    import bench_tasks
    count, worker = int(sys.argv[1]), json.loads(sys.argv[2])
    for model in apps.get_app_config(os.environ["BENCH_APP"]).get_models():
        model.objects.all().delete()
    started = time.perf_counter()
    for number in range(count):
        bench_tasks.noop.enqueue(number)
    enqueue = count / (time.perf_counter() - started)
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", *worker], check=True)
    process = count / (time.perf_counter() - started)
    print(json.dumps({"enqueue_per_s": round(enqueue),
                      "process_per_s": round(process)}))
    """
)


def project(name: str, queue: dict, database: str) -> Path:
    """A throwaway Django project using ``queue`` on its own database."""
    slug = "".join(c if c.isalnum() else "_" for c in name)
    folder = WORK / f"project_{slug}_{database}"
    folder.mkdir(parents=True, exist_ok=True)
    settings = dict(DATABASES[database])
    if database == "sqlite":
        settings["NAME"] = str(folder / "db.sqlite3")
    else:
        settings["NAME"] = f"ddt_peer_{slug}"
        subprocess.run(
            [
                "psql",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-c",
                f"CREATE DATABASE {settings['NAME']}",
            ],
            capture_output=True,
        )
    (folder / "settings.py").write_text(
        textwrap.dedent(
            f"""
            SECRET_KEY = "benchmark"
            USE_TZ = True
            INSTALLED_APPS = ["django.contrib.contenttypes", {queue["app"]!r}]
            DATABASES = {{"default": {settings!r}}}
            TASKS = {{"default": {{"BACKEND": {queue["backend"]!r}, "QUEUES": []}}}}
            DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
            """
        )
    )
    (folder / "bench_tasks.py").write_text(
        "from django.tasks import task\n\n\n"
        "@task\ndef noop(number):\n    return number\n"
    )
    (folder / "manage.py").write_text(
        "import sys\nfrom django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    )
    (folder / "driver.py").write_text(DRIVER)
    return folder


def environment(name: str, queue: dict, database: str) -> Path:
    slug = "".join(c if c.isalnum() else "_" for c in name)
    venv = WORK / f"venv_{slug}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    extras = ["psycopg[binary]"] if database == "postgres" else []
    for packages in ([DJANGO, *extras], queue["install"]):
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages],
            check=True,
            capture_output=True,
        )
    return python


def measure(name: str, queue: dict, database: str, tasks: int) -> dict:
    python = environment(name, queue, database)
    folder = project(name, queue, database)
    run = subprocess.run(
        [str(python), "driver.py", str(tasks), json.dumps(queue["worker"])],
        cwd=folder,
        env={
            "DJANGO_SETTINGS_MODULE": "settings",
            "PYTHONPATH": str(folder),
            "BENCH_APP": queue.get("label", queue["app"]),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=sorted(DATABASES), default="postgres")
    parser.add_argument("--tasks", type=int, default=2000)
    options = parser.parse_args()
    results = {
        name: measure(name, queue, options.database, options.tasks)
        for name, queue in QUEUES.items()
    }
    ours = results["this checkout"]
    ratios = {
        f"vs {name}": {
            key: round(ours[key] / figures[key], 2)
            for key in ("enqueue_per_s", "process_per_s")
        }
        for name, figures in results.items()
        if name != "this checkout"
    }
    print(
        json.dumps(
            {
                "database": options.database,
                "tasks": options.tasks,
                **results,
                "ratios": ratios,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
