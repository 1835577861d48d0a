"""The specification's Quick Start and Usage sections, followed literally."""

import signal
import subprocess
import sys
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from django_database_task.models import DatabaseTask
from tests import spec_tasks
from tests.spec_tasks import (
    background_task,
    bad_task,
    fetch_data,
    good_task,
    my_task,
    send_newsletter,
    send_welcome_email,
    task_with_context,
    urgent_task,
)

ROOT = Path(__file__).resolve().parent.parent


def run_worker(*args):
    out = StringIO()
    call_command("run_database_tasks", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_migrate_django_database_task_creates_and_removes_the_table():
    call_command("migrate", "django_database_task", "zero", verbosity=0)
    assert "django_database_task" not in connection.introspection.table_names()
    call_command("migrate", "django_database_task", verbosity=0)
    assert "django_database_task" in connection.introspection.table_names()
    indexes = connection.introspection.get_constraints(
        connection.cursor(), "django_database_task"
    )
    assert {"ddt_claim_idx", "ddt_claim_queue_idx", "ddt_purge_idx"} <= set(indexes)


@pytest.mark.django_db
def test_quick_start_define_enqueue_and_run(capsys):
    User.objects.create(id=123, username="ada", email="ada@example.com")

    result = send_welcome_email.enqueue(user_id=123)
    print(f"Task ID: {result.id}")
    assert capsys.readouterr().out == f"Task ID: {result.id}\n"

    output = run_worker()
    assert f"SUCCESSFUL {result.id}" in output
    result.refresh()
    assert result.return_value == "Email sent to ada@example.com"


@pytest.mark.django_db(transaction=True)
def test_quick_start_continuous_worker(test_database_env):
    result = my_task.enqueue()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "run_database_tasks",
            "--continuous",
            "--interval",
            "5",
        ],
        cwd=ROOT,
        env=test_database_env | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout.readline().startswith("Worker ")
        assert worker.stdout.readline().startswith(f"SUCCESSFUL {result.id}")
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0


@pytest.mark.django_db
def test_json_serializable_parameters():
    with pytest.raises(TypeError):
        bad_task.enqueue(123, datetime.now())  # TypeError!
    result = good_task.enqueue(123, datetime.now().isoformat())  # OK
    run_worker()
    result.refresh()
    assert result.return_value == datetime.now().year
    assert DatabaseTask.objects.count() == 1


@pytest.mark.django_db
def test_task_with_priority():
    low = background_task.enqueue()
    high = urgent_task.enqueue()
    output = run_worker()
    assert output.index(high.id) < output.index(low.id)


@pytest.mark.django_db
def test_delayed_execution():
    # Run 1 hour from now
    delayed_task = my_task.using(run_after=timezone.now() + timedelta(hours=1))
    result = delayed_task.enqueue()
    assert run_worker().endswith("Processed 0 task(s).\n")
    DatabaseTask.objects.filter(pk=result.id).update(due_at=timezone.now())
    assert f"SUCCESSFUL {result.id}" in run_worker()


@pytest.mark.django_db
def test_task_with_context():
    result = task_with_context.enqueue("hello")
    run_worker()
    result.refresh()
    assert result.return_value == f"Task {result.id} (attempt 1): hello"


@pytest.mark.django_db
def test_async_tasks():
    # Enqueue like normal tasks
    result = fetch_data.enqueue("https://example.com/api")
    run_worker()
    result.refresh()
    assert result.return_value == "<html>https://example.com/api</html>"


@pytest.mark.django_db
def test_queue_specific_tasks():
    newsletter = send_newsletter.enqueue()
    other = my_task.enqueue()
    # python manage.py run_database_tasks --queue emails
    run_worker("--queue", "emails")
    assert DatabaseTask.objects.get(pk=newsletter.id).status == "SUCCESSFUL"
    assert DatabaseTask.objects.get(pk=other.id).status == "READY"
    assert spec_tasks.send_newsletter.queue_name == "emails"
