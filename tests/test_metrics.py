"""Prometheus metrics: the counters follow the database through a mixed run,
the gauges read it at scrape time, and GET metrics/ is an endpoint like the
others. Counters are process-global, so the tests compare scrapes taken
before and after."""

import json
import logging
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.tasks import task_backends
from django.tasks.signals import task_finished
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from django_database_task import process_tasks
from django_database_task.engine import registry
from django_database_task.engine.claim import claim_tasks
from django_database_task.engine.maintenance import rescuer
from django_database_task.metrics import check_metrics, recording
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests import tasks
from tests.endpoints import BEARER, TOKEN, tasks_setting
from tests.processes import LoggedWorker, backend_options, wait_until

pytestmark = pytest.mark.django_db

URL = "/tasks/metrics/"
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}
RETRY_ONCE = {"max_attempts": 2, "retry_backoff": 0.001}
P = "django_database_task"
# Claims made by hand in the tests: no task_started was sent for them.
DEAD, LIVE = "metrics-dead-worker", "metrics-live-worker"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def metered(settings):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[BEARER], METRICS=True, TASK_DEFAULTS=RETRY_ONCE
    )


def scrape(client, **query: str) -> Samples:
    response = client.get(URL, query, headers=AUTHORIZED)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def per_task(samples: Samples, name: str, backend: str = "default") -> Counter:
    """The values of one sample name, by task path."""
    found: Counter = Counter()
    for (sample, labels), value in samples.items():
        labels_dict = dict(labels)
        if sample == name and labels_dict["backend"] == backend:
            found[labels_dict["task"]] += value
    return found


def grown(after: Samples, before: Samples, name: str) -> Counter:
    """How much each task's ``name`` grew between two scrapes."""
    delta = per_task(after, name)
    delta.subtract(per_task(before, name))
    return +delta


def gauge(samples: Samples, name: str, **labels: str) -> float:
    return samples[(f"{P}_{name}", tuple(sorted(labels.items())))]


def drain(backend: str = "default") -> None:
    """Run tasks until none is READY, retries after their short backoff
    included."""
    for _ in range(200):
        process_tasks(max_tasks=100, backend_name=backend)
        ready = DatabaseTask.objects.filter(backend_name=backend, status="READY")
        if not ready.exists():
            return
        time.sleep(0.01)
    raise AssertionError("tasks still READY")


def hold(worker_id: str) -> DatabaseTask:
    """Claim the only due task for ``worker_id``, as its worker would."""
    (row,) = claim_tasks(using="default", backend_name="default", worker_id=worker_id)
    return row


def expected_from_rows() -> dict[str, Counter]:
    """What the counters should have counted, from the stored tasks."""
    expected = {
        name: Counter()
        for name in ("enqueued", "started", "succeeded", "failed", "retried")
    } | {name: Counter() for name in ("rescued", "duration", "latency")}
    for row in DatabaseTask.objects.filter(backend_name="default"):
        path, attempts = row.task_path, len(row.worker_ids)
        expected["enqueued"][path] += 1
        ran_here = [w for w in row.worker_ids if w not in (DEAD, LIVE)]
        expected["started"][path] += len(ran_here)
        if row.worker_ids and row.worker_ids[0] not in (DEAD, LIVE):
            expected["latency"][path] += 1
        if row.status == "SUCCESSFUL":
            expected["succeeded"][path] += 1
        elif row.status == "FAILED":
            expected["failed"][path] += 1
        rescues = sum(
            error["exception_class_path"] == rescuer.WORKER_LOST_PATH
            for error in row.errors
        )
        expected["rescued"][path] += rescues
        # Every attempt but a RUNNING or final one was put back to READY.
        ended = row.status in ("SUCCESSFUL", "FAILED", "RUNNING")
        expected["retried"][path] += attempts - int(ended) - rescues
    for path in expected["enqueued"]:
        expected["duration"][path] = (
            expected["succeeded"][path]
            + expected["failed"][path]
            + expected["retried"][path]
        )
    return {name: +counts for name, counts in expected.items()}


def test_counters_and_gauges_match_the_database_after_a_mixed_run(metered, client):
    before = scrape(client)
    for number in range(3):
        tasks.add.enqueue(number, 1)
    tasks.fail.enqueue()
    tasks.fail.enqueue()
    tasks.flaky.enqueue("metrics-flaky", 1)
    drain()
    # A worker that died holding a task: rescued, then run again.
    registry.register(task_backends["default"], DEAD)
    registry.abandon(task_backends["default"], DEAD)
    tasks.echo.enqueue("rescued")
    hold(DEAD)
    assert rescuer.rescue(task_backends["default"]) == 1
    drain()
    # Left in the queue: one RUNNING on a live worker, delayed and due ones.
    tasks.echo.enqueue("running")
    registry.register(task_backends["default"], LIVE)
    hold(LIVE)
    later = timezone.now() + timedelta(hours=1)
    tasks.add.using(run_after=later).enqueue(1, 2)
    tasks.add.using(run_after=later).enqueue(3, 4)
    for number in range(3):
        tasks.echo.enqueue(number)
    # Another backend, counted apart.
    tasks.add.using(backend="other").enqueue(5, 6)
    drain("other")
    after = scrape(client)

    expected = expected_from_rows()
    assert expected["rescued"] == {"tests.tasks.echo": 1}
    assert expected["retried"] == {"tests.tasks.fail": 2, "tests.tasks.flaky": 1}
    for name in ("enqueued", "started", "succeeded", "failed", "retried", "rescued"):
        assert grown(after, before, f"{P}_tasks_{name}_total") == expected[name], name
    assert (
        grown(after, before, f"{P}_task_duration_seconds_count")
        == (expected["duration"])
    )
    assert (
        grown(after, before, f"{P}_task_start_latency_seconds_count")
        == (expected["latency"])
    )

    queue = {"queue": "default", "backend": "default"}
    assert gauge(after, "tasks_ready", **queue) == 3
    assert gauge(after, "tasks_delayed", **queue) == 2
    assert gauge(after, "tasks_running", **queue) == 1
    assert gauge(after, "workers", backend="default") == 1
    assert gauge(after, "database_up", backend="default") == 1
    oldest = DatabaseTask.objects.filter(status="READY", due_at__lte=timezone.now())
    waited = (timezone.now() - min(row.due_at for row in oldest)).total_seconds()
    assert 0 < gauge(after, "oldest_ready_age_seconds", **queue) <= waited

    # Each backend's scrape holds its own series only.
    assert {dict(labels).get("backend") for _, labels in after} == {"default"}
    other = scrape(client, backend_name="other")
    assert {dict(labels).get("backend") for _, labels in other} == {"other"}
    assert per_task(other, f"{P}_tasks_succeeded_total", "other")["tests.tasks.add"]


def test_an_operator_failing_a_stale_task_counts_it_rescued_and_failed(metered, client):
    tasks.echo.enqueue("stale")
    row = hold(DEAD)
    DatabaseTask.objects.filter(pk=row.pk).update(
        last_attempted_at=timezone.now() - timedelta(hours=2)
    )
    before = scrape(client)
    call_command("requeue_stale_database_tasks", "--older-than", "60", "--mark-failed")
    after = scrape(client)
    assert DatabaseTask.objects.get(pk=row.pk).status == "FAILED"
    for name in ("rescued", "failed"):
        assert grown(after, before, f"{P}_tasks_{name}_total") == {
            "tests.tasks.echo": 1
        }


def test_the_gauges_of_idle_queues_are_zero(metered, settings, client):
    """Every queue of QUEUES is reported, so that a drained one reads 0
    rather than vanishing."""
    default = settings.TASKS["default"]
    settings.TASKS = settings.TASKS | {
        "default": default | {"QUEUES": ["default", "emails"]}
    }
    samples = scrape(client)
    for queue in ("default", "emails"):
        labels = {"queue": queue, "backend": "default"}
        for name in ("tasks_ready", "tasks_delayed", "tasks_running"):
            assert gauge(samples, name, **labels) == 0
        assert gauge(samples, "oldest_ready_age_seconds", **labels) == 0
    assert gauge(samples, "workers", backend="default") == 0


def test_a_metric_that_cannot_be_recorded_fails_no_task(metered, monkeypatch, caplog):
    def broken(**labels):
        raise OSError("the multiprocess directory is gone")

    monkeypatch.setattr(recording.ENQUEUED, "labels", broken)
    monkeypatch.setattr(recording.SUCCEEDED, "labels", broken)
    with caplog.at_level(logging.ERROR, "django_database_task.metrics.recording"):
        result = tasks.add.enqueue(1, 2)
        drain()
    assert DatabaseTask.objects.get(pk=result.id).status == "SUCCESSFUL"
    assert len(caplog.records) == 2


def receivers_connected() -> bool:
    return any(
        key[0] == "django_database_task.metrics.on_finished"
        for key, *_ in task_finished.receivers
    )


def test_receivers_are_connected_only_when_a_backend_opts_in(settings):
    settings.TASKS = tasks_setting()
    assert not receivers_connected()
    settings.TASKS = tasks_setting(METRICS=True)
    assert receivers_connected()
    settings.TASKS = tasks_setting(METRICS=False)
    assert not receivers_connected()


def test_a_backend_that_does_not_opt_in_is_not_counted(settings, client):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER], METRICS=True)
    settings.TASKS = settings.TASKS | {
        "other": settings.TASKS["other"] | {"OPTIONS": {"AUTH_HANDLERS": [BEARER]}}
    }
    before = scrape(client)
    tasks.add.using(backend="other").enqueue(1, 2)
    assert scrape(client) == before
    response = client.get(URL, {"backend_name": "other"}, headers=AUTHORIZED)
    assert response.status_code == 404
    assert "OPTIONS['METRICS'] = True" in response.json()["error"]


def test_the_endpoint_refuses_without_credentials(metered, client):
    response = client.get(URL)
    assert response.status_code == 403
    assert response.json() == {"error": "Authentication failed."}
    wrong = client.get(URL, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 403


def test_a_handler_may_open_the_metrics_only(settings, client):
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(
        AUTH_HANDLERS=[BEARER | {"ENDPOINTS": ["metrics"]}], METRICS=True
    )
    assert client.get(URL, headers=AUTHORIZED).status_code == 200
    status = client.get("/tasks/status/", headers=AUTHORIZED)
    assert status.status_code == 403


def test_only_get_and_known_parameters(metered, client):
    post = client.post(URL, headers=AUTHORIZED)
    assert post.status_code == 405
    unknown = client.get(URL, {"queue_name": "x"}, headers=AUTHORIZED)
    assert unknown.status_code == 400
    assert "allowed: backend_name" in unknown.json()["error"]


def test_without_the_extra_the_endpoint_says_how_to_enable_it(
    metered, client, monkeypatch
):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    response = client.get(URL, headers=AUTHORIZED)
    assert response.status_code == 501
    assert "django-database-task[metrics]" in response.json()["error"]
    errors = check_metrics()
    assert [error.id for error in errors] == ["django_database_task.E302"] * 2


def test_the_option_must_be_a_boolean(settings):
    settings.TASKS = tasks_setting(METRICS="yes")
    errors = check_metrics()
    assert [error.id for error in errors] == ["django_database_task.E301"] * 2
    settings.TASKS = tasks_setting(METRICS=True)
    assert check_metrics() == []


def test_a_missing_multiprocess_directory_is_a_clear_error(
    metered, client, monkeypatch, tmp_path
):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    response = client.get(URL, headers=AUTHORIZED)
    assert response.status_code == 500
    assert "PROMETHEUS_MULTIPROC_DIR" in json.loads(response.content)["error"]


@pytest.mark.django_db(transaction=True)
def test_a_multiprocess_scrape_adds_up_every_workers_counters(
    settings, client, test_database_env, tmp_path, monkeypatch
):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    settings.TASK_API_TOKEN = TOKEN
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
    env = backend_options(settings, test_database_env, METRICS=True)
    env |= {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    workers = [
        LoggedWorker(env, tmp_path, "--continuous", "--interval", "0.1")
        for _ in range(2)
    ]
    try:
        wait_until(
            lambda: DatabaseTaskWorker.objects.count() == 2,
            timeout=60,
            workers=workers,
            what="both workers to register",
        )
        for number in range(12):
            tasks.sleep_then_record.enqueue(f"multiprocess-{number}", 0.1)
        tasks.fail.enqueue()
        tasks.fail.enqueue()
        wait_until(
            lambda: (
                not DatabaseTask.objects.filter(
                    status__in=["READY", "RUNNING"]
                ).exists()
            ),
            timeout=60,
            workers=workers,
            what="every task to finish",
        )
    finally:
        exits = [worker.stop() for worker in workers]
    assert exits == [0, 0], [worker.errors() for worker in workers]

    # Each worker wrote its own file, and ran some of the tasks.
    succeeded = f"{P}_tasks_succeeded_total"
    by_worker = []
    for worker in workers:
        (path,) = directory.glob(f"counter_{worker.pid}.db")
        merged = MultiProcessCollector.merge([str(path)])
        by_worker.append(
            sum(
                sample.value
                for family in merged
                for sample in family.samples
                if sample.name == succeeded
            )
        )
    assert all(by_worker), by_worker
    samples = scrape(client)
    assert per_task(samples, succeeded) == {"tests.tasks.sleep_then_record": 12}
    assert sum(by_worker) == 12
    assert per_task(samples, f"{P}_tasks_failed_total") == {"tests.tasks.fail": 2}
    assert per_task(samples, f"{P}_tasks_started_total") == {
        "tests.tasks.sleep_then_record": 12,
        "tests.tasks.fail": 2,
    }
    durations = per_task(samples, f"{P}_task_duration_seconds_count")
    assert durations == {"tests.tasks.sleep_then_record": 12, "tests.tasks.fail": 2}
    # The gauges come from the database, as in one process.
    assert gauge(samples, "workers", backend="default") == 0
