"""On SQLite, the checks run with database access (migrate, check
--database) warn when the tasks' database is not in WAL mode."""

from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connection

from django_database_task.sqlite_journal import check_sqlite_journal

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's journal"),
]


@contextmanager
def journal_mode(mode: str):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        (before,) = cursor.fetchone()
        cursor.execute(f"PRAGMA journal_mode={mode}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA journal_mode={before}")


def test_a_rollback_journal_is_warned_about_with_the_setting_that_fixes_it():
    with journal_mode("DELETE"):
        [warning] = check_sqlite_journal(databases=["default"])
    assert warning.id == "django_database_task.W004"
    assert "'delete'" in warning.msg
    assert "PRAGMA journal_mode=WAL;" in warning.hint


def test_wal_mode_and_databases_without_tasks_pass():
    with journal_mode("WAL"):
        assert check_sqlite_journal(databases=["default"]) == []
    with journal_mode("DELETE"):
        assert check_sqlite_journal(databases=[]) == []
        assert check_sqlite_journal() == []


def test_check_with_database_access_reports_it(capsys):
    with journal_mode("DELETE"):
        call_command("check", "--database", "default")
    assert "django_database_task.W004" in capsys.readouterr().err
