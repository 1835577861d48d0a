"""OPTIONS["ALLOWED_TASK_MODULES"]: which modules a stored row may make a
worker import."""

import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTask
from django.test import override_settings

from django_database_task import process_tasks
from django_database_task.models import DatabaseTask
from tests import broken, tasks
from tests.factories import make_task

pytestmark = pytest.mark.django_db

BACKEND = "django_database_task.backends.DatabaseTaskBackend"


def allowing(modules):
    return override_settings(
        TASKS={
            "default": {
                "BACKEND": BACKEND,
                "OPTIONS": {"ALLOWED_TASK_MODULES": modules},
            }
        }
    )


@allowing(["tests.tasks"])
def test_tasks_in_an_allowed_module_enqueue_and_run():
    enqueued = tasks.add.enqueue(1, 2)
    [result] = process_tasks()
    assert (result.id, result.return_value) == (enqueued.id, 3)


@allowing(["tests.task"])
def test_enqueue_refuses_a_task_outside_the_allowed_modules():
    """A prefix counts at a dot only: tests.task does not allow tests.tasks."""
    with pytest.raises(InvalidTask, match="not in a module listed in"):
        tasks.add.enqueue(1, 2)
    assert not DatabaseTask.objects.exists()


@allowing(["tests.tasks"])
def test_the_worker_never_imports_a_stored_path_outside_them():
    sys.modules.pop("tests.broken.side_effect", None)
    broken.IMPORTS.clear()
    outside = make_task(task_path="tests.broken.side_effect.harmless")
    [result] = process_tasks()
    assert result.status == "FAILED"
    row = DatabaseTask.objects.get(pk=outside.pk)
    assert row.errors[0]["exception_class_path"] == (
        "django_database_task.results.TaskNotAllowed"
    )
    assert "ALLOWED_TASK_MODULES" in row.errors[0]["traceback"]
    assert broken.IMPORTS == []
    assert "tests.broken.side_effect" not in sys.modules
    # Reading the result does not import it either.
    assert task_backends["default"].get_result(str(outside.pk)).status == "FAILED"
    assert broken.IMPORTS == []


@allowing(["tests"])
def test_a_package_allows_its_submodules():
    sys.modules.pop("tests.broken.side_effect", None)
    broken.IMPORTS.clear()
    make_task(task_path="tests.broken.side_effect.harmless", args=[])
    [result] = process_tasks()
    assert (result.status, result.return_value) == ("SUCCESSFUL", "ran")
    assert broken.IMPORTS == ["tests.broken.side_effect"]


@pytest.mark.parametrize("modules", ["tests.tasks", [""], [3], ["tests", None]])
def test_a_bad_setting_is_a_clear_error(modules):
    with (
        allowing(modules),
        pytest.raises(
            ImproperlyConfigured, match="ALLOWED_TASK_MODULES must be a list"
        ),
    ):
        task_backends["default"]
