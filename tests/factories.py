"""Rows written straight to the table in any state, and reading them back:
what the tests share."""

from datetime import timedelta

from django.utils import timezone

from django_database_task.models import DatabaseTask, DatabaseTaskWorker


def make_task(**fields) -> DatabaseTask:
    now = timezone.now()
    values = {
        "task_path": "tests.tasks.add",
        "queue_name": "default",
        "backend_name": "default",
        "status": "READY",
        "args": [1, 2],
        "kwargs": {},
        "enqueued_at": now,
        "due_at": now,
    }
    values.update(fields)
    if "run_after" in fields and "due_at" not in fields and fields["run_after"]:
        values["due_at"] = fields["run_after"]
    # Read back, so the test compares with what the database stored.
    return DatabaseTask.objects.get(pk=DatabaseTask.objects.create(**values).pk)


def finished_task(status: str = "SUCCESSFUL", seconds: float = 1.5, **fields):
    """A task that ran once on ``worker-1`` and took ``seconds``."""
    finished = fields.pop("finished_at", timezone.now())
    started = finished - timedelta(seconds=seconds)
    fields.setdefault("worker_ids", ["worker-1"])
    return make_task(
        status=status,
        started_at=started,
        last_attempted_at=started,
        finished_at=finished,
        **fields,
    )


def failed_task(**fields) -> DatabaseTask:
    fields.setdefault(
        "errors",
        [
            {
                "exception_class_path": "builtins.ValueError",
                "traceback": "Traceback (most recent call last):\nValueError: boom\n",
            }
        ],
    )
    return finished_task("FAILED", **fields)


def started_by_workers() -> set[str]:
    """Ids of the tasks the workers' started lists name. A worker writes a
    task there just before it starts it; a RUNNING task may only be claimed,
    and a worker stopped then gives it back unstarted."""
    lists = DatabaseTaskWorker.objects.values_list("started_task_ids", flat=True)
    return {task_id for listed in lists for task_id in listed or ()}


def stored(result) -> DatabaseTask:
    """The row of a TaskResult or of a row read earlier, as it is now."""
    return DatabaseTask.objects.get(pk=getattr(result, "pk", None) or result.id)


def status_of(result) -> str:
    return stored(result).status


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]
