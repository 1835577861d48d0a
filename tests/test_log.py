"""Task logging: one record per start and finish with stable attributes, and
a JSON formatter that turns each into one parseable object."""

import io
import json
import logging

import pytest

from django_database_task import process_tasks
from django_database_task.log import JSONFormatter
from tests import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    package = logging.getLogger("django_database_task")
    package.addHandler(handler)
    previous = package.level
    package.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    package.removeHandler(handler)
    package.setLevel(previous)


def test_each_task_start_and_finish_is_one_json_object(json_lines):
    done = tasks.add.enqueue(1, 2)
    failed = tasks.fail.enqueue("no stock")
    process_tasks()
    records = [r for r in json_lines() if r["logger"] == "django_database_task.tasks"]
    by_status = {(r["task_id"], r["status"]): r for r in records}
    assert set(by_status) == {
        (done.id, "RUNNING"),
        (done.id, "SUCCESSFUL"),
        (failed.id, "RUNNING"),
        (failed.id, "FAILED"),
    }
    success = by_status[(done.id, "SUCCESSFUL")]
    assert success["level"] == "INFO"
    assert success["task_path"] == "tests.tasks.add"
    assert (success["queue"], success["backend"], success["attempt"]) == (
        "default",
        "default",
        1,
    )
    assert success["duration"] >= 0 and success["worker_id"]
    failure = by_status[(failed.id, "FAILED")]
    assert failure["level"] == "ERROR"
    assert "ValueError: no stock" in failure["exception"]
    assert by_status[(done.id, "RUNNING")]["level"] == "DEBUG"
