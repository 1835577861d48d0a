"""Who sees the task admin and who may act on tasks."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from django_database_task.models import DatabaseTask
from tests.factories import make_task, messages_of

pytestmark = pytest.mark.django_db


def staff_client(*codenames: str) -> Client:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_database_task", codename__in=codenames
        )
    )
    client = Client()
    client.force_login(user)
    return client


def action_names(response) -> set[str]:
    return {
        name
        for name, _label in response.context["action_form"].fields["action"].choices
        if name
    }


def test_staff_without_permissions_sees_nothing(changelist_url, dashboard_url):
    client = staff_client()
    task = make_task()
    assert client.get(changelist_url).status_code == 403
    assert client.get(dashboard_url).status_code == 403
    assert client.get(f"{changelist_url}{task.pk}/change/").status_code == 403
    assert "databasetask" not in client.get("/admin/").content.decode()


def test_anonymous_is_sent_to_login(client, changelist_url, dashboard_url):
    for url in (changelist_url, dashboard_url):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/admin/login/")


def test_view_permission_shows_list_detail_dashboard_but_no_actions(
    changelist_url, dashboard_url, post_action
):
    client = staff_client("view_databasetask")
    task = make_task()
    response = client.get(changelist_url)
    assert response.status_code == 200
    assert response.context["action_form"] is None
    assert client.get(dashboard_url).status_code == 200
    assert client.get(f"{changelist_url}{task.pk}/change/").status_code == 200
    response = post_action("cancel_ready", [task], client=client)
    assert DatabaseTask.objects.get().status == "READY"


def test_change_permission_gives_status_actions_not_delete(changelist_url, post_action):
    client = staff_client("view_databasetask", "change_databasetask")
    task = make_task()
    assert action_names(client.get(changelist_url)) == {
        "run_selected",
        "retry_failed",
        "requeue_running",
        "cancel_ready",
    }
    response = post_action("delete_selected", [task], client=client, post="yes")
    assert DatabaseTask.objects.filter(pk=task.pk).exists()
    assert (
        messages_of(response) == ["No action selected."] or response.status_code == 200
    )
    response = post_action("cancel_ready", [task], client=client)
    assert messages_of(response)[0] == "Cancelled 1 ready task (marked FAILED)."
    assert "Cancelled by staff" in DatabaseTask.objects.get().errors[0]["traceback"]


def test_delete_permission_gives_delete_only(changelist_url):
    client = staff_client("view_databasetask", "delete_databasetask")
    make_task()
    assert action_names(client.get(changelist_url)) == {"delete_selected"}


def test_change_permission_still_cannot_edit_a_task(changelist_url):
    client = staff_client("view_databasetask", "change_databasetask")
    task = make_task()
    url = f"{changelist_url}{task.pk}/change/"
    assert 'name="_save"' not in client.get(url).content.decode()
    assert client.post(url, {"status": "FAILED"}).status_code == 403
