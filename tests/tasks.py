"""Tasks the tests enqueue. Module-level, as Django requires."""

import asyncio
import os
import signal
import time
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.tasks import task

from django_database_task.models import DatabaseTask, DatabaseTaskWorker

from .models import Counter, Execution, Span


@task
def add(a, b):
    return a + b


@task
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@task
def fail(message="boom"):
    raise ValueError(message)


@task
def exit_task():
    raise SystemExit(3)


@task
def returns_datetime():
    return datetime(2026, 1, 1)


@task(takes_context=True)
def with_context(context, message):
    task_id = context.task_result.id
    return f"Task {task_id} (attempt {context.attempt}): {message}"


@task
async def async_add(a, b):
    await asyncio.sleep(0)
    return a + b


@task(priority=10)
def urgent():
    return "urgent"


@task(priority=-10)
def background():
    return "background"


@task(queue_name="emails")
def send_newsletter():
    return "sent"


@task
def record(key):
    """Counts executions in a table with a unique key: a second run of the
    same task fails with IntegrityError and is visible as a duplicate."""
    try:
        Execution.objects.create(key=key)
    except IntegrityError:
        Execution.objects.filter(key=key).update(duplicates=1)
        raise
    return key


@task
def sleep_then_record(key, seconds):
    time.sleep(seconds)
    Execution.objects.create(key=key)
    return key


@task
def record_every_run(key, seconds=0):
    """Counts executions like ``record``, but a second run succeeds too and
    adds to ``duplicates``: a task run again after a crash still ends
    SUCCESSFUL, and the extra run shows. Sleeps ``seconds`` first."""
    if seconds:
        time.sleep(seconds)
    _, created = Execution.objects.get_or_create(key=key)
    if not created:
        Execution.objects.filter(key=key).update(duplicates=F("duplicates") + 1)
    return key


@task(takes_context=True)
def look_at_my_worker(context, seconds=0):
    """When it began (on this process's monotonic clock), and what its worker
    had written down by then: the tasks its started list names, and the
    tasks it holds."""
    if seconds:
        time.sleep(seconds)
    worker_id = context.task_result.worker_ids[-1]
    listed = DatabaseTaskWorker.objects.get(pk=worker_id).started_task_ids
    held = DatabaseTask.objects.filter(status="RUNNING", worker_id=worker_id)
    return {
        "began": time.monotonic(),
        "listed": listed,
        "held": [str(pk) for pk in held.values_list("pk", flat=True)],
    }


@task(takes_context=True)
def hang_on_first_attempt(context, key, seconds):
    """Sleeps through its first attempt, long enough for a test to kill the
    worker, and records the key at once on a later one."""
    if context.attempt == 1:
        time.sleep(seconds)
    Execution.objects.create(key=key)
    return context.attempt


not_a_task = "plain string"


def fail_then_succeed(key, failures, error=ConnectionError):
    """Raise ``error`` on the first ``failures`` calls for ``key``, then
    return how many calls it took."""
    counter, _ = Counter.objects.get_or_create(key=key)
    Counter.objects.filter(key=key).update(value=F("value") + 1)
    counter.refresh_from_db()
    if counter.value <= failures:
        raise error(f"call {counter.value} for {key} failed")
    return counter.value


@task(takes_context=True)
def flaky(context, key, failures):
    """Fails its first ``failures`` attempts; returns the attempt that worked."""
    fail_then_succeed(key, failures)
    return context.attempt


@task
async def async_flaky(key, failures):
    from asgiref.sync import sync_to_async

    return await sync_to_async(fail_then_succeed)(key, failures)


@task
def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


@task
async def async_sleep_for(seconds):
    await asyncio.sleep(seconds)
    return seconds


@task
def timed_sleep(key, seconds):
    """Sleeps, recording when it ran in a Span (unique per key)."""
    started = time.time()
    time.sleep(seconds)
    Span.objects.create(key=key, started=started, ended=time.time())
    return key


@task
async def async_timed_sleep(key, seconds):
    from asgiref.sync import sync_to_async

    started = time.time()
    await asyncio.sleep(seconds)
    await sync_to_async(Span.objects.create)(
        key=key, started=started, ended=time.time()
    )
    return key


class Unpicklable(Exception):
    def __init__(self, message, handle):
        super().__init__(message)
        self.handle = handle


@task
def raise_unpicklable():
    raise Unpicklable("cannot travel", handle=lambda: None)


@task
def kill_own_process():
    """Dies as the OOM killer would have it: SIGKILL, no cleanup."""
    os.kill(os.getpid(), signal.SIGKILL)


@task
def leave_autocommit_off(key):
    """Records ``key``, then leaves this thread's connection as a commit that
    failed when the database went away leaves it: no atomic block, but
    autocommit off (Django's atomic() could not switch it back on)."""
    Execution.objects.create(key=key)
    transaction.set_autocommit(False)


@task
async def async_leave_autocommit_off(key):
    """The same from an async task, whose queries run in sync_to_async's
    thread; it fails, as the task whose commit failed would."""
    from asgiref.sync import sync_to_async

    await sync_to_async(leave_autocommit_off.func)(key)
    raise ConnectionError("the commit failed")


@task
async def async_record(key):
    from asgiref.sync import sync_to_async

    return await sync_to_async(record.func)(key)
