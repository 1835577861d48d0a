import pytest
from django.urls import reverse

CHANGELIST = "admin:django_database_task_databasetask_changelist"
DASHBOARD = "admin:django_database_task_databasetask_dashboard"


@pytest.fixture
def changelist_url():
    return reverse(CHANGELIST)


@pytest.fixture
def dashboard_url():
    return reverse(DASHBOARD)


@pytest.fixture
def post_action(admin_client, changelist_url):
    """POST an admin action on some tasks; returns the followed response."""

    def post(action, tasks, client=None, **extra):
        data = {
            "action": action,
            "_selected_action": [str(task.pk) for task in tasks],
            "index": 0,
            **extra,
        }
        return (client or admin_client).post(changelist_url, data, follow=True)

    return post
