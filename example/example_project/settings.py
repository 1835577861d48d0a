"""A minimal project using django-database-task on SQLite.

Run as is (``make demo``), it needs no environment at all. The deployment
files under ``deploy/`` run it like a production project, configured by
environment variables; each one is optional and its default is the demo's:

- ``DATABASE_URL``: ``sqlite:////absolute/path.sqlite3`` or
  ``postgres://user:password@host:port/name`` (default: ``db.sqlite3`` here).
- ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG`` (``true``/``false``),
  ``DJANGO_ALLOWED_HOSTS`` (comma-separated).
- ``DJANGO_LOG_FORMAT=json``: log records as JSON lines on stderr
  (``django_database_task.log.JSONFormatter``).
- ``TASK_METRICS_TOKEN``: turns on Prometheus metrics, served at
  ``/tasks/metrics/`` to callers sending ``Authorization: Bearer <token>``
  (needs the ``metrics`` extra); ``PROMETHEUS_MULTIPROC_DIR`` is read by
  prometheus-client itself.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent


# WAL: requests enqueueing and workers claiming do not block each other;
# writers wait up to 30 s for the lock rather than fail.
SQLITE_OPTIONS = {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 30}


def database_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # Several worker processes write to the file at once: writers wait
        # for the lock rather than fail.
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(parsed.path),
            "OPTIONS": SQLITE_OPTIONS,
        }
    if parsed.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.path.lstrip("/"),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            # An unreachable server fails a health probe before the probe
            # times out (exit status 3 of check_database_tasks).
            "OPTIONS": {"connect_timeout": 5},
        }
    raise ValueError(f"DATABASE_URL must start with sqlite:// or postgres://: {url!r}")


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = env_flag("DJANGO_DEBUG", True)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
USE_TZ = True
ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_database_task",
    "shop",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
        }
    }

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASK_METRICS_TOKEN = os.environ.get("TASK_METRICS_TOKEN", "")
TASKS = {
    "default": {
        "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
        "QUEUES": [],  # Empty list means all queues
        "OPTIONS": {},
    },
}
if TASK_METRICS_TOKEN:
    TASKS["default"]["OPTIONS"] |= {
        "METRICS": True,
        # The scraper may read metrics and nothing else: the other endpoints
        # of the bundled URLconf stay closed.
        "AUTH_HANDLERS": [
            {
                "HANDLER": "django_database_task.auth.BearerTokenAuth",
                "ENDPOINTS": ["metrics"],
                "OPTIONS": {"SETTING": "TASK_METRICS_TOKEN"},
            }
        ],
    }

# The worker prints one line per task itself (or logs one JSON record): keep
# Django's own per-task log quiet.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.tasks": {"level": "WARNING"}},
}
if os.environ.get("DJANGO_LOG_FORMAT") == "json":
    LOGGING |= {
        "formatters": {"json": {"()": "django_database_task.log.JSONFormatter"}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["json"], "level": "INFO"},
    }
    LOGGING["loggers"] |= {
        "django_database_task": {
            "handlers": ["json"],
            "level": "INFO",
            "propagate": False,
        },
    }
