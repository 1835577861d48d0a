"""The task list: columns, sorting, filters, search and query counts."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from django_database_task.admin.pagination import EstimatedCountPaginator
from django_database_task.admin.task_admin import DatabaseTaskAdmin
from tests.factories import failed_task, finished_task, make_task

pytestmark = pytest.mark.django_db

TWO_BACKENDS = {
    "default": {
        "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
        "QUEUES": ["default", "emails"],
    },
    "other": {
        "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
        "QUEUES": ["default"],
    },
}


def rows(response) -> list:
    return list(response.context["cl"].result_list)


def test_every_column_is_shown(admin_client, changelist_url):
    task = finished_task(
        task_path="tests.tasks.echo",
        queue_name="emails",
        priority=7,
        seconds=1.5,
        run_after=datetime(2030, 1, 2, 3, 4, tzinfo=UTC),
        enqueued_at=datetime(2029, 12, 31, 23, 0, tzinfo=UTC),
        worker_ids=["w1", "w2"],
    )
    response = admin_client.get(changelist_url)
    assert response.status_code == 200
    html = response.content.decode()
    row = re.search(r"<tr>.*?</tr>", html.split("<tbody>")[1], re.S).group(0)
    assert str(task.id) in row
    assert "tests.tasks.echo" in row
    assert '<td class="field-queue_name">emails</td>' in row
    assert '<td class="field-priority">7</td>' in row
    assert 'class="ddt-badge ddt-status-successful"' in row
    assert "Successful" in row  # the badge text, readable without colour
    assert "12/31/2029 11 p.m." in row  # enqueued
    assert "01/02/2030 3:04 a.m." in row  # run after
    assert "1.5 s" in row
    assert '<td class="field-attempts_display">2</td>' in row


def test_unfinished_task_has_no_duration(admin_client, changelist_url):
    make_task()
    response = admin_client.get(changelist_url)
    assert '<td class="field-duration_display">—</td>' in response.content.decode()


@pytest.mark.parametrize(
    ("column", "low", "high"),
    [
        (
            "short_id",
            {"id": "00000000-0000-0000-0000-000000000001"},
            {"id": "ffffffff-0000-0000-0000-000000000001"},
        ),
        ("task_path", {"task_path": "a.task"}, {"task_path": "z.task"}),
        ("queue_name", {"queue_name": "a"}, {"queue_name": "z"}),
        ("priority", {"priority": -5}, {"priority": 5}),
        ("status_display", {"status": "FAILED"}, {"status": "SUCCESSFUL"}),
        (
            "enqueued_display",
            {"enqueued_at": datetime(2020, 1, 1, tzinfo=UTC)},
            {"enqueued_at": datetime(2021, 1, 1, tzinfo=UTC)},
        ),
        (
            "run_after_display",
            {"run_after": datetime(2020, 1, 1, tzinfo=UTC)},
            {"run_after": datetime(2021, 1, 1, tzinfo=UTC)},
        ),
        ("duration_display", {"seconds": 1}, {"seconds": 90}),
        ("attempts_display", {"worker_ids": ["a"]}, {"worker_ids": ["a", "b", "c"]}),
    ],
)
def test_every_column_sorts(admin_client, changelist_url, column, low, high):
    low_task = finished_task(**low)
    high_task = finished_task(**high)
    index = DatabaseTaskAdmin.list_display.index(column) + 1  # 0 is the checkbox
    ascending = rows(admin_client.get(changelist_url, {"o": str(index)}))
    descending = rows(admin_client.get(changelist_url, {"o": f"-{index}"}))
    assert [t.pk for t in ascending] == [low_task.pk, high_task.pk]
    assert [t.pk for t in descending] == [high_task.pk, low_task.pk]


def test_newest_first_by_default(admin_client, changelist_url):
    old = make_task(enqueued_at=datetime(2020, 1, 1, tzinfo=UTC))
    new = make_task(enqueued_at=datetime(2021, 1, 1, tzinfo=UTC))
    assert [t.pk for t in rows(admin_client.get(changelist_url))] == [new.pk, old.pk]


def test_filter_by_status(admin_client, changelist_url):
    failed = failed_task()
    make_task()
    finished_task()
    response = admin_client.get(changelist_url, {"status__exact": "FAILED"})
    assert [t.pk for t in rows(response)] == [failed.pk]


def test_filter_by_queue_lists_stored_queues_when_any_is_allowed(
    admin_client, changelist_url
):
    email = make_task(queue_name="emails")
    make_task(queue_name="default")
    response = admin_client.get(changelist_url, {"queue_name": "emails"})
    assert [t.pk for t in rows(response)] == [email.pk]
    html = response.content.decode()
    assert "?queue_name=default" in html and "?queue_name=emails" in html


@override_settings(TASKS=TWO_BACKENDS)
def test_queue_choices_come_from_settings_without_a_query(admin_client, changelist_url):
    make_task(queue_name="stored-only")
    html = admin_client.get(changelist_url).content.decode()
    assert "?queue_name=emails" in html
    assert "?queue_name=stored-only" not in html


@override_settings(TASKS=TWO_BACKENDS)
def test_filter_by_backend(admin_client, changelist_url):
    other = make_task(backend_name="other")
    make_task(backend_name="default")
    response = admin_client.get(changelist_url, {"backend_name": "other"})
    assert [t.pk for t in rows(response)] == [other.pk]
    assert "?backend_name=default" in response.content.decode()


def test_search_by_full_task_id(admin_client, changelist_url):
    task = make_task()
    make_task()
    response = admin_client.get(changelist_url, {"q": f" {task.pk} "})
    assert [t.pk for t in rows(response)] == [task.pk]


def test_search_by_part_of_the_path(admin_client, changelist_url):
    echo = make_task(task_path="tests.tasks.echo")
    make_task(task_path="tests.tasks.add")
    response = admin_client.get(changelist_url, {"q": "ECHO"})
    assert [t.pk for t in rows(response)] == [echo.pk]


def test_search_for_unknown_id_finds_nothing(admin_client, changelist_url):
    make_task()
    response = admin_client.get(
        changelist_url, {"q": "00000000-0000-0000-0000-000000000000"}
    )
    assert response.status_code == 200 and rows(response) == []


def _list_queries(client, url) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in queries.captured_queries]


def test_query_count_does_not_grow_with_rows(admin_client, changelist_url):
    for _ in range(3):
        failed_task()
    few = _list_queries(admin_client, changelist_url)
    for _ in range(40):
        failed_task(queue_name="emails")
    many = _list_queries(admin_client, changelist_url)
    assert len(few) == len(many)


def test_no_unbounded_count(admin_client, changelist_url):
    for _ in range(3):
        make_task()
    counts = [
        sql
        for sql in _list_queries(admin_client, changelist_url)
        if "COUNT(" in sql.upper()
    ]
    assert counts, "the paginator counts, boundedly"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_bad_sort_parameter_is_not_a_500(admin_client, changelist_url):
    response = admin_client.get(changelist_url, {"o": "99"})
    assert response.status_code == 200


def test_page_past_the_end_is_not_a_500(admin_client, changelist_url):
    make_task()
    response = admin_client.get(changelist_url, {"p": "99"})
    assert response.status_code in (200, 302)


def test_list_links_to_dashboard(admin_client, changelist_url, dashboard_url):
    assert dashboard_url in admin_client.get(changelist_url).content.decode()


def test_no_add_button(admin_client, changelist_url):
    html = admin_client.get(changelist_url).content.decode()
    assert f"{changelist_url}add/" not in html
    assert admin_client.get(f"{changelist_url}add/").status_code == 403


def test_duration_of_a_long_task(admin_client, changelist_url):
    finished_task(seconds=timedelta(minutes=2, seconds=5).total_seconds())
    assert "2 min 5 s" in admin_client.get(changelist_url).content.decode()


def test_facet_counts_are_never_computed(admin_client, changelist_url):
    make_task()
    queries = _list_queries(admin_client, f"{changelist_url}?_facets=True")
    counts = [sql for sql in queries if "COUNT(" in sql.upper()]
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_past_the_exact_limit_the_count_is_an_estimate(
    admin_client, changelist_url, monkeypatch
):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_limit", 3)
    for _ in range(5):
        make_task()
    response = admin_client.get(changelist_url)
    paginator = response.context["cl"].paginator
    if connection.vendor == "sqlite":  # no planner estimate: exact
        assert (paginator.is_estimate, paginator.count) == (False, 5)
    else:
        assert paginator.is_estimate and paginator.count >= 4
        assert "about" in response.content.decode()


def test_under_the_exact_limit_the_count_is_exact(admin_client, changelist_url):
    for _ in range(5):
        make_task()
    paginator = admin_client.get(changelist_url).context["cl"].paginator
    assert (paginator.is_estimate, paginator.count) == (False, 5)
