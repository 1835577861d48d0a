"""task_rescued: sent once per task taken back from a lost worker, with what
a receiver needs to count it."""

import pytest
from django.tasks import TaskResultStatus, task_backends
from django.test import override_settings

from django_database_task.backends import DatabaseTaskBackend
from django_database_task.engine import registry
from django_database_task.engine.maintenance import rescuer
from django_database_task.engine.signals import task_rescued
from tests.factories import make_task

pytestmark = pytest.mark.django_db

BACKEND = {"BACKEND": "django_database_task.backends.DatabaseTaskBackend"}


@pytest.fixture
def sent():
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append({"sender": sender, **kwargs})

    task_rescued.connect(receiver)
    with override_settings(TASKS={"default": BACKEND}):
        yield calls
    task_rescued.disconnect(receiver)


def stranded(max_attempts: int):
    registry.register(task_backends["default"], "lost")
    registry.abandon(task_backends["default"], "lost")
    return make_task(
        status="RUNNING",
        worker_id="lost",
        worker_ids=["lost"],
        max_attempts=max_attempts,
        queue_name="emails",
    )


@pytest.mark.parametrize(
    ("max_attempts", "status"),
    [(2, TaskResultStatus.READY), (1, TaskResultStatus.FAILED)],
)
def test_each_rescued_task_is_announced_once(sent, max_attempts, status):
    task = stranded(max_attempts)
    assert rescuer.rescue(task_backends["default"]) == 1
    assert rescuer.rescue(task_backends["default"]) == 0
    assert sent == [
        {
            "sender": DatabaseTaskBackend,
            "signal": task_rescued,
            "backend_name": "default",
            "task_id": str(task.pk),
            "task_path": task.task_path,
            "queue_name": "emails",
            "status": status,
        }
    ]


def test_a_task_claimed_ahead_and_never_started_is_announced_ready(sent):
    task = stranded(max_attempts=1)
    registry.record_started(task_backends["default"], "lost", [])
    assert rescuer.rescue(task_backends["default"]) == 1
    assert [(call["task_id"], call["status"]) for call in sent] == [
        (str(task.pk), TaskResultStatus.READY)
    ]
