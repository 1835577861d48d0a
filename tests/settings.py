"""Test settings; the database comes from DATABASE_URL (SQLite by default).

sqlite:///path/to/file.sqlite3
postgres://user@host:port/name
mysql://root@127.0.0.1:3306/name
"""

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent

ENGINES = {
    "sqlite": "django.db.backends.sqlite3",
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
}


def database_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in ENGINES:
        raise ValueError(
            f"DATABASE_URL {url!r} must start with one of "
            f"{', '.join(f'{scheme}://' for scheme in ENGINES)}."
        )
    engine = ENGINES[parsed.scheme]
    if parsed.scheme == "sqlite":
        name = unquote(parsed.path) or str(BASE_DIR / "ddt.sqlite3")
        # A file, not memory, so that worker processes share the test database.
        return {
            "ENGINE": engine,
            "NAME": name,
            "TEST": {"NAME": f"{name}.test"},
            # Several worker processes write to the file at once; in WAL
            # mode readers do not wait for them (the README's advice).
            "OPTIONS": {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
        }
    database = {
        "ENGINE": engine,
        "NAME": parsed.path.lstrip("/") or "ddt",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
    }
    if parsed.scheme == "mysql":
        database["OPTIONS"] = {"charset": "utf8mb4"}
    return database


DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'ddt.sqlite3'}"
    )
}
# A second database, for tasks kept apart from the application's data.
DATABASES["tasks"] = {
    **DATABASES["default"],
    "NAME": f"{DATABASES['default']['NAME']}_tasks",
    "TEST": {
        "NAME": f"{DATABASES['default'].get('TEST', {}).get('NAME', 'test')}_tasks"
        if DATABASES["default"]["ENGINE"].endswith("sqlite3")
        else None
    },
}
# Worker processes started by a test connect straight to its test database.
if os.environ.get("DDT_TEST_DATABASE_NAME"):
    DATABASES = {
        "default": DATABASES["default"] | {"NAME": os.environ["DDT_TEST_DATABASE_NAME"]}
    }
# ... with aliases as JSON, each the default's settings with some changed:
# {"default": {"PORT": "6432"}, "direct": {}} sends the default through a
# pooler on port 6432 and adds a "direct" alias to the server itself.
if os.environ.get("DDT_TEST_DATABASES"):
    DATABASES |= {
        alias: DATABASES["default"] | changes
        for alias, changes in json.loads(os.environ["DDT_TEST_DATABASES"]).items()
    }

SECRET_KEY = "tests-only-secret"
USE_TZ = True
TIME_ZONE = "UTC"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_database_task",
    "tests",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

STATIC_URL = "/static/"

TASKS = {
    "default": {
        "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
        "QUEUES": [],
        "OPTIONS": {},
    },
}
# Worker processes started by a test get the backend options the test set
# (retries, heartbeat and rescue timing), as JSON.
if os.environ.get("DDT_TEST_TASK_OPTIONS"):
    TASKS["default"]["OPTIONS"] |= json.loads(os.environ["DDT_TEST_TASK_OPTIONS"])

# Fast password hashing: tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
