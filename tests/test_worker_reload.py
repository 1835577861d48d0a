"""run_database_tasks --reload: Django's autoreloader restarts the worker
when a module it imported changes, after the running task finished."""

import importlib
import os
import signal
import uuid

import pytest
from django.tasks import TaskResultStatus

from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks
from tests.models import Execution
from tests.processes import LoggedWorker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.acceptance]

PROBE = """
from django.tasks import task


@task
def probe(key):
    from tests.models import Execution

    Execution.objects.create(key=key)
    return key
"""


def status_of(result) -> str:
    return DatabaseTask.objects.get(pk=result.id).status


def banners(worker: LoggedWorker) -> int:
    return sum(
        line.startswith("Worker ") and " started: " in line
        for line in worker.output().splitlines()
    )


def test_a_code_change_restarts_the_worker_after_its_running_task(
    test_database_env, tmp_path, monkeypatch
):
    modules = tmp_path / "modules"
    modules.mkdir()
    name = f"reload_probe_{uuid.uuid4().hex}"
    source = modules / f"{name}.py"
    source.write_text(PROBE)
    monkeypatch.syspath_prepend(str(modules))
    probe = importlib.import_module(name).probe
    before = probe.enqueue("before")
    worker = LoggedWorker(
        test_database_env,
        tmp_path,
        *("--continuous", "--reload", "--interval", "0.2"),
        *("--pythonpath", str(modules)),
    )
    try:
        wait_until(
            lambda: status_of(before) == TaskResultStatus.SUCCESSFUL,
            timeout=60,
            workers=[worker],
            what="the worker to import the module and run its task",
        )
        slow = tasks.sleep_then_record.enqueue("slow", 2)
        wait_until(
            lambda: status_of(slow) == TaskResultStatus.RUNNING,
            timeout=30,
            workers=[worker],
            what="the slow task to start",
        )

        def changed_and_restarted() -> bool:
            # The reloader polls every second and must have seen the file
            # once before a change counts: keep changing it.
            os.utime(source)
            return banners(worker) == 2

        wait_until(
            changed_and_restarted,
            timeout=60,
            workers=[worker],
            what="the worker to restart",
        )
        after = probe.enqueue("after")
        wait_until(
            lambda: status_of(after) == TaskResultStatus.SUCCESSFUL,
            timeout=60,
            workers=[worker],
            what="the restarted worker to run a task",
        )
        [child] = DatabaseTaskWorker.objects.values_list("pid", flat=True)
        # Ctrl-C: the reloader's parent ignores it, the child stops.
        os.kill(child, signal.SIGINT)
        exit_code = worker.process.wait(timeout=30)
    finally:
        worker.kill()
    assert exit_code == 0, worker.errors()
    output = worker.output()
    assert f"{source} changed: restarting after the running task(s)." in output
    # The slow task finished in the first worker, before the restart.
    restart = output.index(" started: ", output.index("changed: restarting"))
    assert output.index(f"SUCCESSFUL {slow.id}") < restart
    assert len(DatabaseTask.objects.get(pk=slow.id).worker_ids) == 1
    assert Execution.objects.filter(key="slow").exists()
    [first] = DatabaseTask.objects.get(pk=before.id).worker_ids
    [second] = DatabaseTask.objects.get(pk=after.id).worker_ids
    assert first.split(":")[1] != second.split(":")[1]  # another process
    assert "Stopping after the running task(s)" in output
    assert not DatabaseTaskWorker.objects.exists()
    assert "Traceback" not in worker.errors()
