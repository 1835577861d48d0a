"""The bulk actions: what they change, what they skip and why."""

from datetime import timedelta

import pytest
from django.test.utils import override_settings
from django.utils import timezone

from django_database_task.admin.actions import INLINE_RUN_LIMIT
from django_database_task.engine.transitions import CANCELLED_PATH
from django_database_task.models import DatabaseTask
from tests.endpoints import BEARER, TOKEN, tasks_setting
from tests.factories import failed_task, finished_task, make_task, messages_of

pytestmark = pytest.mark.django_db(transaction=False)

LATER = timedelta(days=1)


def statuses(*tasks) -> list[str]:
    return [DatabaseTask.objects.get(pk=t.pk).status for t in tasks]


def test_run_selected_runs_ready_tasks_now(post_action):
    first = make_task(args=[1, 2])
    deferred = make_task(args=[3, 4], run_after=timezone.now() + LATER)
    done = finished_task()
    running = make_task(status="RUNNING")
    response = post_action("run_selected", [first, deferred, done, running])
    assert messages_of(response) == [
        "Ran 2 tasks: 2 successful, 0 failed.",
        "Skipped 2 tasks (1 Running, 1 Successful): only READY tasks can be run.",
    ]
    assert statuses(first, deferred, done, running) == [
        "SUCCESSFUL",
        "SUCCESSFUL",
        "SUCCESSFUL",
        "RUNNING",
    ]
    assert DatabaseTask.objects.get(pk=deferred.pk).return_value == 7


def test_run_selected_reports_failures(post_action):
    task = make_task(task_path="tests.tasks.fail", args=[])
    response = post_action("run_selected", [task])
    assert messages_of(response) == ["Ran 1 task: 0 successful, 1 failed."]
    assert statuses(task) == ["FAILED"]


def test_run_many_leaves_them_to_the_worker(post_action):
    later = timezone.now() + LATER
    tasks = [make_task(run_after=later) for _ in range(INLINE_RUN_LIMIT + 1)]
    before = timezone.now()
    response = post_action("run_selected", tasks)
    count = INLINE_RUN_LIMIT + 1
    assert messages_of(response) == [
        f"Marked {count} tasks due now; a worker will run them."
    ]
    for task in DatabaseTask.objects.filter(pk__in=[t.pk for t in tasks]):
        assert task.status == "READY"
        assert before <= task.due_at <= timezone.now()
        assert task.worker_ids == []


def test_retry_failed_runs_them_again_and_keeps_old_errors(post_action):
    first = failed_task(args=[2, 3])
    second = failed_task(args=[4, 5])
    ready = make_task()
    response = post_action("retry_failed", [first, second, ready])
    assert messages_of(response) == [
        "Ran 2 tasks: 2 successful, 0 failed.",
        "Skipped 1 task (1 Ready): only FAILED tasks can be retried.",
    ]
    retried = DatabaseTask.objects.get(pk=first.pk)
    assert retried.status == "SUCCESSFUL"
    assert retried.return_value == 5
    assert retried.errors[0]["exception_class_path"] == "builtins.ValueError"
    assert len(retried.worker_ids) == 2
    assert statuses(ready) == ["READY"]


def test_retry_many_moves_them_back_to_ready(post_action):
    tasks = [failed_task() for _ in range(INLINE_RUN_LIMIT + 2)]
    response = post_action("retry_failed", tasks)
    assert messages_of(response) == [
        f"Moved {len(tasks)} failed tasks back to READY; a worker will run them."
    ]
    for task in DatabaseTask.objects.filter(pk__in=[t.pk for t in tasks]):
        assert task.status == "READY"
        assert task.finished_at is None
        assert task.due_at <= timezone.now()


def test_requeue_running(post_action):
    stuck = make_task(status="RUNNING", worker_ids=["dead-worker"])
    ready = make_task()
    response = post_action("requeue_running", [stuck, ready])
    assert messages_of(response) == [
        "Requeued 1 running task (back to READY).",
        "Skipped 1 task (1 Ready): only RUNNING tasks can be requeued.",
    ]
    assert statuses(stuck, ready) == ["READY", "READY"]


def test_cancel_ready_marks_failed_with_who_cancelled(post_action):
    earlier = {"exception_class_path": "builtins.ValueError", "traceback": "tb"}
    first = make_task()
    second = make_task(errors=[earlier])
    running = make_task(status="RUNNING")
    response = post_action("cancel_ready", [first, second, running])
    assert messages_of(response) == [
        "Cancelled 2 ready tasks (marked FAILED).",
        "Skipped 1 task (1 Running): only READY tasks can be cancelled.",
    ]
    cancelled = DatabaseTask.objects.get(pk=second.pk)
    assert cancelled.status == "FAILED" and cancelled.finished_at is not None
    assert cancelled.errors[0] == earlier
    assert cancelled.errors[1]["exception_class_path"] == CANCELLED_PATH
    assert (
        "Cancelled by admin from the Django admin." in cancelled.errors[1]["traceback"]
    )
    assert len(DatabaseTask.objects.get(pk=first.pk).errors) == 1
    assert statuses(running) == ["RUNNING"]


def test_a_task_cancelled_in_the_admin_stays_cancelled_until_retried_there(
    post_action, client, settings
):
    """The Cloud Tasks backend's RETRY_FAILED_TASKS calls execute/ with
    allow_retry=true: that must not bring a cancelled task back."""
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    task = make_task(args=[20, 22])
    post_action("cancel_ready", [task])
    response = client.post(
        f"/tasks/execute/{task.pk}/?allow_retry=true",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.json() == {
        "executed": False,
        "reason": "Task is not in READY or FAILED status",
    }
    assert statuses(task) == ["FAILED"]
    response = post_action("retry_failed", [task])
    assert messages_of(response) == ["Ran 1 task: 1 successful, 0 failed."]
    retried = DatabaseTask.objects.get(pk=task.pk)
    assert (retried.status, retried.return_value) == ("SUCCESSFUL", 42)
    assert retried.cancelled_at is None


def test_nothing_to_change_only_reports_skips(post_action):
    done = finished_task()
    response = post_action("cancel_ready", [done])
    assert messages_of(response) == [
        "Skipped 1 task (1 Successful): only READY tasks can be cancelled."
    ]


def test_delete_asks_first_then_deletes_all_but_running(post_action):
    ready, failed, running = make_task(), failed_task(), make_task(status="RUNNING")
    confirm = post_action("delete_selected", [ready, failed, running])
    html = confirm.content.decode()
    assert "Delete 2 tasks? This cannot be undone." in html
    assert "1 running task will be skipped." in html
    assert DatabaseTask.objects.count() == 3
    response = post_action("delete_selected", [ready, failed, running], post="yes")
    assert messages_of(response) == [
        "Deleted 2 tasks.",
        "Skipped 1 task (1 Running): running tasks are not deleted; requeue or "
        "wait for them first.",
    ]
    assert list(DatabaseTask.objects.values_list("pk", flat=True)) == [running.pk]


def test_delete_across_all_filtered_tasks(post_action, changelist_url, admin_client):
    failed = [failed_task() for _ in range(3)]
    kept = make_task()
    response = admin_client.post(
        f"{changelist_url}?status__exact=FAILED",
        {
            "action": "delete_selected",
            "_selected_action": [str(failed[0].pk)],
            "select_across": "1",
            "index": 0,
            "post": "yes",
        },
        follow=True,
    )
    assert messages_of(response) == ["Deleted 3 tasks."]
    assert list(DatabaseTask.objects.values_list("pk", flat=True)) == [kept.pk]


def test_run_across_all_filtered_tasks(admin_client, changelist_url):
    later = timezone.now() + LATER
    tasks = [make_task(run_after=later) for _ in range(INLINE_RUN_LIMIT + 1)]
    other = make_task(queue_name="emails", run_after=later)
    response = admin_client.post(
        f"{changelist_url}?queue_name=default",
        {
            "action": "run_selected",
            "_selected_action": [str(tasks[0].pk)],
            "select_across": "1",
            "index": 0,
        },
        follow=True,
    )
    assert messages_of(response) == [
        f"Marked {len(tasks)} tasks due now; a worker will run them."
    ]
    assert DatabaseTask.objects.get(pk=other.pk).due_at == other.due_at


@override_settings(
    TASKS={"default": {"BACKEND": "django_database_task.backends.DatabaseTaskBackend"}}
)
def test_run_task_of_unconfigured_backend_says_why(post_action):
    task = make_task(backend_name="gone")
    response = post_action("run_selected", [task])
    [message] = messages_of(response)
    assert message.startswith(f"Task {task.pk}: Task backend 'gone' is not configured")
    assert statuses(task) == ["READY"]


def test_no_selection_changes_nothing(admin_client, changelist_url):
    make_task()
    response = admin_client.post(
        changelist_url, {"action": "cancel_ready", "index": 0}, follow=True
    )
    assert response.status_code == 200
    assert DatabaseTask.objects.get().status == "READY"
