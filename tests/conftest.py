import os

import pytest
from django.db import connection


@pytest.fixture
def test_database_env():
    """Environment for child processes (workers) so that they use the test
    database the test runner created."""
    return {
        **os.environ,
        "DDT_TEST_DATABASE_NAME": connection.settings_dict["NAME"],
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
