"""Cancelling a task withdraws its Cloud Task once the cancel commits, through
the real client against the stand-in."""

import logging

import pytest
from django.db import transaction

from tests.tasks import add, send_newsletter

pytestmark = pytest.mark.django_db(transaction=True)


def test_cloud_task_is_deleted_after_commit(configure, cloud_tasks):
    backend = configure()
    result = add.enqueue(1, 2)
    other = send_newsletter.enqueue()
    assert cloud_tasks.has(result.id) and cloud_tasks.has(other.id)
    with transaction.atomic():
        backend.on_tasks_cancelled([result.id, other.id])
        assert cloud_tasks.has(result.id), "deleted before the commit"
    # Each found in its own queue.
    assert not cloud_tasks.has(result.id)
    assert not cloud_tasks.has(other.id)
    deletes = [
        path.split("?")[0]
        for method, path, _ in cloud_tasks.requests
        if method == "DELETE"
    ]
    location = "/v2/projects/proj/locations/europe-west9"
    assert sorted(deletes) == sorted(
        [
            f"{location}/queues/default/tasks/{result.id}",
            f"{location}/queues/emails/tasks/{other.id}",
        ]
    )


def test_rollback_deletes_nothing(configure, cloud_tasks):
    backend = configure()
    result = add.enqueue(1, 2)
    with pytest.raises(RuntimeError), transaction.atomic():
        backend.on_tasks_cancelled([result.id])
        raise RuntimeError("roll back")
    assert cloud_tasks.has(result.id)
    assert [method for method, _, _ in cloud_tasks.requests] == ["POST"]


def test_cloud_task_already_gone_is_done(configure, cloud_tasks, caplog):
    backend = configure()
    result = add.enqueue(1, 2)
    with caplog.at_level(logging.WARNING, "django_database_task.cloudtasks"):
        backend.on_tasks_cancelled([result.id])
        backend.on_tasks_cancelled([result.id])
    assert not cloud_tasks.has(result.id)
    assert caplog.records == []


@pytest.mark.parametrize("status", [403, 500])
def test_failing_cloud_tasks_is_logged_and_does_not_raise(
    configure, cloud_tasks, caplog, status
):
    backend = configure(CLOUD_TASKS_TIMEOUT=0.5)
    result = add.enqueue(1, 2)
    cloud_tasks.delete_error = status
    with (
        caplog.at_level(logging.WARNING, "django_database_task.cloudtasks"),
        transaction.atomic(),
    ):
        backend.on_tasks_cancelled([result.id])
    assert cloud_tasks.has(result.id)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "Could not delete the Cloud Tasks of 1 cancelled task(s)" in (
        record.getMessage()
    )
    assert not record.exc_info


def test_unreachable_cloud_tasks_is_logged_and_does_not_raise(
    configure, cloud_tasks, caplog
):
    backend = configure(CLOUD_TASKS_TIMEOUT=0.5)
    result = add.enqueue(1, 2)
    cloud_tasks.stop()
    with caplog.at_level(logging.WARNING, "django_database_task.cloudtasks"):
        backend.on_tasks_cancelled([result.id])
    assert "Could not delete the Cloud Tasks of 1 cancelled task(s)" in caplog.text


def test_cancelling_in_the_admin_withdraws_the_cloud_task(
    configure, cloud_tasks, admin_client
):
    """End to end: the admin's cancel goes through the engine's transition,
    which tells the backend."""
    configure()
    result = add.enqueue(1, 2)
    kept = add.enqueue(3, 4)
    admin_client.post(
        "/admin/django_database_task/databasetask/",
        {"action": "cancel_ready", "_selected_action": [result.id], "index": 0},
    )
    assert not cloud_tasks.has(result.id)
    assert cloud_tasks.has(kept.id)


def test_bulk_enqueued_tasks_get_their_cloud_tasks_after_commit(configure, cloud_tasks):
    from django_database_task import bulk_enqueue

    configure()
    with transaction.atomic():
        results = bulk_enqueue(add, [((n, n), {}) for n in range(3)])
        assert cloud_tasks.requests == [], "created before the commit"
    assert all(cloud_tasks.has(r.id) for r in results)
