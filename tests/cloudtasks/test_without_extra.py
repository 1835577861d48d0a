"""Without the cloudtasks extra, everything else still imports and works."""

import subprocess
import sys

import pytest

SCRIPT = """
import sys
sys.modules["google"] = None  # as if google-cloud-tasks/google-auth were absent
import django
django.setup()
import django_database_task.api, django_database_task.views, django_database_task.urls
import django_database_task.auth, django_database_task.admin
from django_database_task import process_one_task
from tests.tasks import add

add.enqueue(1, 2)
print("RAN:", process_one_task().status)
try:
    import django_database_task.cloudtasks
except ImportError as error:
    print("IMPORT ERROR:", error)
else:
    print("imported?!")
"""


@pytest.mark.django_db(transaction=True)
def test_package_works_and_cloudtasks_names_the_extra(test_database_env):
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=test_database_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "RAN: SUCCESSFUL" in completed.stdout
    assert "IMPORT ERROR:" in completed.stdout
    assert "pip install 'django-database-task[cloudtasks]'" in completed.stdout
