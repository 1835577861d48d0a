"""The requeue_stale_database_tasks command: the rescue, by hand and by age."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.tasks import task_backends
from django.test import override_settings
from django.utils import timezone

from django_database_task.engine import registry
from django_database_task.engine.maintenance import stale
from django_database_task.engine.maintenance.rescuer import WORKER_LOST_PATH
from django_database_task.models import DatabaseTask

pytestmark = pytest.mark.django_db

BACKEND = "django_database_task.backends.DatabaseTaskBackend"
TWO_BACKENDS = {
    "default": {"BACKEND": BACKEND},
    "other": {"BACKEND": BACKEND, "OPTIONS": {"DATABASE": "tasks"}},
}


def running(
    minutes: float,
    *,
    worker_id: str = "web-1:100:abc",
    attempts: int = 1,
    max_attempts: int = 3,
    **fields,
) -> DatabaseTask:
    """A task RUNNING on ``worker_id`` for ``minutes``, its ``attempts``-th."""
    now = timezone.now()
    started = now - timedelta(minutes=minutes)
    values = {
        "task_path": "tests.tasks.add",
        "queue_name": "default",
        "backend_name": "default",
        "status": "RUNNING",
        "enqueued_at": started,
        "due_at": started,
        "started_at": started,
        "last_attempted_at": started,
        "worker_id": worker_id,
        "worker_ids": [f"earlier-{n}" for n in range(attempts - 1)] + [worker_id],
        "max_attempts": max_attempts,
        "retry_backoff": 10.0,
        "retry_backoff_max": 25.0,
        **fields,
    }
    using = values.pop("using", "default")
    return DatabaseTask.objects.using(using).create(**values)


def requeue(*args: str, **options) -> str:
    out = StringIO()
    call_command("requeue_stale_database_tasks", *args, stdout=out, **options)
    return out.getvalue()


def fresh(task: DatabaseTask) -> DatabaseTask:
    return DatabaseTask.objects.using(task._state.db).get(pk=task.pk)


def test_old_tasks_are_requeued_with_a_worker_lost_error_and_young_ones_kept():
    old = running(120, attempts=2)
    young = running(5)
    before = timezone.now()
    output = requeue("--older-than", "1h")
    after = timezone.now()
    assert output == "Requeued 1 task(s), failed 0 task(s).\n"
    old = fresh(old)
    assert (old.status, old.worker_id, old.finished_at) == ("READY", "", None)
    assert [e["exception_class_path"] for e in old.errors] == [WORKER_LOST_PATH]
    assert (
        "Requeued as stale: the attempt on worker web-1:100:abc"
        in (old.errors[0]["traceback"])
    )
    # Second attempt used: up to 10 * 2 s of backoff, with jitter.
    assert before <= old.due_at <= after + timedelta(seconds=20)
    assert fresh(young).status == "RUNNING"
    assert fresh(young).errors == []


def test_the_backoff_is_honoured(monkeypatch):
    monkeypatch.setattr(
        "django_database_task.engine.retry_policy.random.uniform", lambda a, b: b
    )
    first, capped = running(90, attempts=1), running(90, attempts=2, max_attempts=9)
    capped.retry_backoff_max = 15.0
    capped.save()
    before = timezone.now()
    requeue("--older-than", "90", "--batch-size", "1")
    after = timezone.now()
    for task, delay in ((first, 10), (capped, 15)):
        due_at = fresh(task).due_at
        assert before + timedelta(seconds=delay) <= due_at
        assert due_at <= after + timedelta(seconds=delay)


def test_tasks_of_any_holder_are_requeued_the_unrecorded_one_included():
    backend = task_backends["default"]
    registry.register(backend, "live-worker")
    registry.register(backend, "dead-worker")
    registry.abandon(backend, "dead-worker")
    tasks = [
        running(60, worker_id="live-worker"),
        running(60, worker_id="dead-worker"),
        running(60, worker_id=""),
    ]
    assert "Requeued 3 task(s)" in requeue("--older-than", "30m")
    assert {fresh(task).status for task in tasks} == {"READY"}
    unrecorded = fresh(tasks[2]).errors[0]["traceback"]
    assert "the attempt on a worker not on record" in unrecorded


def test_a_task_that_used_its_attempts_fails():
    task = running(60, attempts=3, max_attempts=3)
    assert requeue("--older-than", "30m") == ("Requeued 0 task(s), failed 1 task(s).\n")
    task = fresh(task)
    assert (task.status, task.worker_id) == ("FAILED", "")
    assert task.finished_at is not None
    assert task.errors[-1]["exception_class_path"] == WORKER_LOST_PATH


def test_mark_failed_fails_whatever_the_attempts():
    task = running(60, attempts=1, max_attempts=5)
    assert "failed 1 task(s)" in requeue("--older-than", "30m", "--mark-failed")
    assert fresh(task).status == "FAILED"


@pytest.mark.parametrize(
    ("attempts", "stored", "override", "status"),
    [(1, 1, "3", "READY"), (2, 5, "2", "FAILED")],
)
def test_max_attempts_replaces_the_stored_one(attempts, stored, override, status):
    task = running(60, attempts=attempts, max_attempts=stored)
    requeue("--older-than", "30m", "--max-attempts", override)
    task = fresh(task)
    assert task.status == status
    assert task.max_attempts == stored


def test_dry_run_lists_and_changes_nothing():
    retried = running(60, attempts=1, max_attempts=2)
    failing = running(60, attempts=2, max_attempts=2, task_path="tests.tasks.fail")
    running(1)
    before = {t.pk: t for t in DatabaseTask.objects.all()}
    output = requeue("--older-than", "30m", "--dry-run", "--batch-size", "1")
    assert output.splitlines()[-1] == (
        "Would requeue 1 task(s) and fail 1 task(s) (dry run)."
    )
    assert f"{retried.pk} tests.tasks.add queue=default worker=web-1:100:abc" in output
    assert f"{failing.pk} tests.tasks.fail" in output
    assert "attempts 2/2: would fail" in output
    after = {t.pk: t for t in DatabaseTask.objects.all()}
    assert [(t.status, t.worker_id, t.errors, t.due_at) for t in before.values()] == [
        (t.status, t.worker_id, t.errors, t.due_at) for t in after.values()
    ]


def test_queue_filter_repeated_and_comma_separated():
    tasks = {name: running(60, queue_name=name) for name in ("a", "b", "c", "d")}
    requeue("--older-than", "30m", "--queue", "a, b", "--queue", "c")
    statuses = {name: fresh(task).status for name, task in tasks.items()}
    assert statuses == {"a": "READY", "b": "READY", "c": "READY", "d": "RUNNING"}


@pytest.mark.django_db(databases=["default", "tasks"])
@override_settings(TASKS=TWO_BACKENDS)
def test_backend_filter_reads_the_backends_own_database():
    mine = running(60)
    theirs = running(60, backend_name="other", using="tasks")
    assert "Requeued 1 task(s)" in requeue("--older-than", "30m")
    assert (fresh(mine).status, fresh(theirs).status) == ("READY", "RUNNING")
    requeue("--older-than", "30m", "--backend", "other")
    assert fresh(theirs).status == "READY"


def test_many_tasks_in_small_batches():
    tasks = [running(60) for _ in range(7)]
    assert "Requeued 7 task(s)" in requeue("--older-than", "1m", "--batch-size", "3")
    assert {fresh(task).status for task in tasks} == {"READY"}


def test_a_task_finished_meanwhile_keeps_its_outcome(monkeypatch):
    task = running(60)
    real = stale.requeue_lost

    def finish_first(backend, **kwargs):
        DatabaseTask.objects.filter(pk=kwargs["pk"]).update(
            status="SUCCESSFUL", worker_id=""
        )
        return real(backend, **kwargs)

    monkeypatch.setattr(stale, "requeue_lost", finish_first)
    output = requeue("--older-than", "30m", verbosity=2)
    assert "left alone: it finished or moved on meanwhile" in output
    assert output.splitlines()[-1] == (
        "Requeued 0 task(s), failed 0 task(s). 1 task(s) finished or moved on "
        "meanwhile and were left alone."
    )
    assert (fresh(task).status, fresh(task).errors) == ("SUCCESSFUL", [])


def test_verbosity():
    running(60)
    running(60, worker_id="")
    assert requeue("--older-than", "30m", verbosity=0) == ""
    running(60)
    lines = requeue("--older-than", "30m", verbosity=2).splitlines()
    assert len(lines) == 2
    assert "attempts 1/3: requeued" in lines[0]


@pytest.mark.parametrize("value", ["90", "90s", "2M", " 1d ", "365d"])
def test_durations_accepted(value):
    assert "Requeued 0 task(s)" in requeue("--older-than", value)


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((), {}, "the following arguments are required: --older-than"),
        (("--older-than", "soon"), {}, "--older-than must be a duration such as"),
        (("--older-than", "1.5h"), {}, "--older-than must be a duration such as"),
        (("--older-than=-5m",), {}, "--older-than must be a duration such as"),
        (("--older-than", "0"), {}, "--older-than must be above 0 and at most 365d"),
        (("--older-than", "366d"), {}, "at most 365d, not '366d'"),
        (("--older-than", "999999999999d"), {}, "at most 365d"),
        (("--older-than", "9" * 40), {}, "must be a duration such as"),
        (("--older-than", "1h", "--batch-size", "0"), {}, "batch_size must be"),
        (("--older-than", "1h", "--batch-size", "10001"), {}, "between 1 and 10000"),
        (("--older-than", "1h", "--batch-size", "x"), {}, "invalid int value"),
        (("--older-than", "1h", "--max-attempts", "0"), {}, "max_attempts must be"),
        (("--older-than", "1h", "--max-attempts", "-2"), {}, "1 or more, not -2"),
        (("--older-than", "1h"), {"backend": "nope"}, "'nope' is not configured"),
        (("--older-than", "1h"), {"queue": ["a\x00"]}, "--queue contains a NUL"),
        (("--older-than", "1h"), {"queue": ["\ud800"]}, "--queue contains a lone"),
        (
            ("--older-than", "1h", "--mark-failed", "--max-attempts", "2"),
            {},
            "not allowed with argument",
        ),
    ],
)
def test_bad_input_is_a_command_error(args, options, message):
    task = running(600)
    with pytest.raises(CommandError, match=re.escape(message)):
        requeue(*args, **options)
    assert fresh(task).status == "RUNNING"
