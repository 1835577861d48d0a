import os

import pytest
from django.db import connection

from tests.endpoints import BEARER, TOKEN, Api, tasks_setting


@pytest.fixture
def test_database_env():
    """Environment for child processes (workers) so that they use the test
    database the test runner created."""
    return {
        **os.environ,
        "DDT_TEST_DATABASE_NAME": connection.settings_dict["NAME"],
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }


@pytest.fixture(params=["bundled", "individual"])
def api(request, db, settings, client, django_user_model) -> Api:
    """The bundled URLconf with a bearer token, or the views mounted one by
    one behind staff_member_required (which ignore AUTH_HANDLERS)."""
    settings.TASK_API_TOKEN = TOKEN
    if request.param == "bundled":
        settings.TASKS = tasks_setting(AUTH_HANDLERS=[BEARER])
        return Api(client, "/tasks/", {"Authorization": f"Bearer {TOKEN}"})
    settings.TASKS = tasks_setting()
    user = django_user_model.objects.create_user(
        "staff", password="unused-pass", is_staff=True
    )
    client.force_login(user)
    return Api(client, "/staff/")
