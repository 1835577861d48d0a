"""GET and POST purge/: every parameter, default and limit. POST through
both mountings; GET, which a session cannot authorise, with a bearer token
through the bundled URLconf and through a view wrapped in a token
decorator."""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_database_task.models import DatabaseTask
from tests import tasks
from tests.endpoints import Api, finish, header_api


@pytest.fixture(params=["bundled", "token"])
def cron(request, db, settings, client) -> Api:
    """A bearer token and no session."""
    return header_api(request.param, client, settings)


@pytest.fixture
def finished(request):
    """Two tasks finished 10 days ago (one SUCCESSFUL, one FAILED), two today,
    and one still READY."""
    # The test's mounting configures TASKS first.
    request.getfixturevalue("cron" if "cron" in request.fixturenames else "api")
    old_ok, old_failed = tasks.add.enqueue(1, 1), tasks.fail.enqueue()
    new_ok, new_failed = tasks.add.enqueue(2, 2), tasks.fail.enqueue()
    finish(old_ok, old_failed, days_ago=10)
    finish(new_ok, new_failed)
    ready = tasks.add.using(run_after=timezone.now() + timedelta(days=1)).enqueue(3, 3)
    return {"old": [old_ok, old_failed], "new": [new_ok, new_failed], "ready": ready}


def remaining() -> set[str]:
    return {str(pk) for pk in DatabaseTask.objects.values_list("pk", flat=True)}


def test_purge_post_defaults_delete_every_finished_task(api, finished):
    response = api.post("purge/", {})
    assert response.status_code == 200
    assert response.json() == {"deleted": 4, "dry_run": False}
    assert remaining() == {finished["ready"].id}


def test_purge_get_defaults_delete_every_finished_task(cron, finished):
    response = cron.get("purge/")
    assert response.status_code == 200
    assert response.json() == {"deleted": 4, "dry_run": False}
    assert remaining() == {finished["ready"].id}


def test_purge_post_days(api, finished):
    assert api.post("purge/", {"days": 7}).json() == {"deleted": 2, "dry_run": False}
    assert remaining() == {r.id for r in [*finished["new"], finished["ready"]]}


def test_purge_get_days(cron, finished):
    assert cron.get("purge/", {"days": "7"}).json() == {"deleted": 2, "dry_run": False}
    assert remaining() == {r.id for r in [*finished["new"], finished["ready"]]}


def test_purge_days_zero_means_all(api, finished):
    assert api.post("purge/", {"days": 0}).json()["deleted"] == 4


@pytest.mark.parametrize("status", ["FAILED", "failed", " FAILED "])
def test_purge_post_status(api, finished, status):
    assert api.post("purge/", {"status": status}).json()["deleted"] == 2
    assert DatabaseTask.objects.filter(status="FAILED").count() == 0
    assert DatabaseTask.objects.filter(status="SUCCESSFUL").count() == 2


def test_purge_post_status_list(api, finished):
    assert api.post("purge/", {"status": ["SUCCESSFUL"]}).json()["deleted"] == 2
    assert DatabaseTask.objects.filter(status="SUCCESSFUL").count() == 0


def test_purge_get_status(cron, finished):
    response = cron.get("purge/", {"status": "SUCCESSFUL,FAILED", "days": "7"})
    assert response.json()["deleted"] == 2
    assert cron.get("purge/", {"status": "SUCCESSFUL"}).json()["deleted"] == 1


@pytest.mark.parametrize("batch_size", [1, 3, 10000])
def test_purge_post_batch_size(api, finished, batch_size):
    response = api.post("purge/", {"batch_size": batch_size})
    assert response.json() == {"deleted": 4, "dry_run": False}


@pytest.mark.parametrize("batch_size", ["1", "10000"])
def test_purge_get_batch_size(cron, finished, batch_size):
    response = cron.get("purge/", {"batch_size": batch_size})
    assert response.json() == {"deleted": 4, "dry_run": False}


def test_purge_post_dry_run(api, finished):
    response = api.post("purge/", {"days": 7, "dry_run": True})
    assert response.json() == {"count": 2, "dry_run": True}
    assert len(remaining()) == 5


def test_purge_post_dry_run_false(api, finished):
    response = api.post("purge/", {"dry_run": False})
    assert response.json() == {"deleted": 4, "dry_run": False}


@pytest.mark.parametrize("value", ["true", "True", "TRUE"])
def test_purge_get_dry_run(cron, finished, value):
    response = cron.get("purge/", {"days": "7", "dry_run": value})
    assert response.json() == {"count": 2, "dry_run": True}
    assert len(remaining()) == 5


def test_purge_get_dry_run_false(cron, finished):
    response = cron.get("purge/", {"dry_run": "false"})
    assert response.json() == {"deleted": 4, "dry_run": False}


def test_purge_post_backend_name(api, finished):
    theirs = tasks.add.using(backend="other").enqueue(1, 1)
    finish(theirs)
    response = api.post("purge/", {"backend_name": "other"})
    assert response.json() == {"deleted": 1, "dry_run": False}
    assert len(remaining()) == 5


def test_purge_get_backend_name(cron, finished):
    theirs = tasks.add.using(backend="other").enqueue(1, 1)
    finish(theirs)
    response = cron.get("purge/", {"backend_name": "other"})
    assert response.json() == {"deleted": 1, "dry_run": False}
    assert len(remaining()) == 5
