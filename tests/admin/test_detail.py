"""The task detail page: pretty JSON, errors, attempts, and nothing editable."""

import pytest
from django.urls import reverse

from tests.factories import failed_task, finished_task, make_task

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


def change_url(task) -> str:
    return reverse(
        "admin:django_database_task_databasetask_change", args=[str(task.pk)]
    )


def test_arguments_and_return_value_as_pretty_json(admin_client):
    task = finished_task(
        task_path="tests.tasks.echo",
        args=[1, "two"],
        kwargs={"name": "Ada", "tags": ["x"]},
        return_value={"ok": True, "n": 3},
    )
    html = admin_client.get(change_url(task)).content.decode()
    assert '<pre class="ddt-json">[\n  1,\n  &quot;two&quot;\n]</pre>' in html
    assert "&quot;name&quot;: &quot;Ada&quot;" in html
    assert "{\n  &quot;n&quot;: 3,\n  &quot;ok&quot;: true\n}" in html


def test_every_error_with_class_and_traceback(admin_client):
    task = failed_task(
        errors=[
            {"exception_class_path": "builtins.ValueError", "traceback": "TB one"},
            {"exception_class_path": "builtins.KeyError", "traceback": "TB two"},
        ],
        worker_ids=["host:1:aaa", "host:2:bbb"],
    )
    html = admin_client.get(change_url(task)).content.decode()
    assert "Error 1 of 2:" in html and "Error 2 of 2:" in html
    assert "builtins.ValueError" in html and "builtins.KeyError" in html
    assert '<pre class="ddt-traceback">TB one</pre>' in html
    assert '<pre class="ddt-traceback">TB two</pre>' in html


def test_attempt_history(admin_client):
    task = failed_task(worker_ids=["host:1:aaa", "host:2:bbb"])
    html = admin_client.get(change_url(task)).content.decode()
    assert "<td>1</td><td>host:1:aaa</td><td>started at" in html
    assert "<td>2</td><td>host:2:bbb</td><td>last attempted at" in html
    assert "finished at" in html


def test_never_attempted(admin_client):
    html = admin_client.get(change_url(make_task())).content.decode()
    assert "Never attempted." in html


def test_everything_is_read_only(admin_client):
    task = make_task()
    response = admin_client.get(change_url(task))
    html = response.content.decode()
    assert response.context["adminform"].form.fields == {}
    assert 'name="_save"' not in html
    assert "<textarea" not in html and 'name="status"' not in html


def test_posting_a_change_is_refused(admin_client):
    task = make_task()
    response = admin_client.post(change_url(task), {"status": "SUCCESSFUL"})
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.status == "READY"


def test_unknown_task_is_not_a_500(admin_client):
    url = reverse(
        "admin:django_database_task_databasetask_change",
        args=["00000000-0000-0000-0000-000000000000"],
    )
    response = admin_client.get(url, follow=True)
    assert response.status_code == 200
    assert "doesn’t exist" in response.content.decode()


def test_task_data_is_escaped_on_every_page(
    admin_client, changelist_url, dashboard_url
):
    task = failed_task(
        task_path=f"tests.{SCRIPT}",
        queue_name=SCRIPT,
        args=[SCRIPT],
        kwargs={SCRIPT: SCRIPT},
        errors=[{"exception_class_path": SCRIPT, "traceback": SCRIPT}],
        worker_ids=[SCRIPT],
    )
    make_task(queue_name=SCRIPT)
    for url in (changelist_url, change_url(task), dashboard_url):
        html = admin_client.get(url).content.decode()
        assert SCRIPT not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
