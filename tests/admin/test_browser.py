"""The admin in a real headless Chromium.

``DDT_SCREENSHOTS=docs/images pytest -m browser`` also saves the README
screenshots there; without it they go to a temporary directory.
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.tasks import task_backends
from django.urls import reverse
from django.utils import timezone

from django_database_task.engine import registry
from django_database_task.models import DatabaseTask, DatabaseTaskWorker
from tests.factories import failed_task, finished_task, make_task

from .browser import chromium, missing

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(missing() is not None, reason=missing() or ""),
]

PASSWORD = "browser-test-password"


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture
def logged_in(browser, live_server, transactional_db):
    from selenium.webdriver.common.by import By

    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert browser.find_element(By.ID, "user-tools")
    return browser


def test_retry_two_failed_tasks_then_open_the_dashboard(logged_in, live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    browser = logged_in
    first = failed_task(args=[1, 2], finished_at=timezone.now() - timedelta(minutes=3))
    second = failed_task(args=[3, 4], finished_at=timezone.now() - timedelta(minutes=2))
    failed_task(args=[5, 6])
    make_task()
    finished_task()

    browser.get(
        live_server.url + reverse("admin:django_database_task_databasetask_changelist")
    )
    browser.find_element(By.CSS_SELECTOR, "#changelist-filter").find_element(
        By.LINK_TEXT, "Failed"
    ).click()
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 3
    assert all("Failed" in row.text for row in rows)

    for task in (first, second):
        browser.find_element(
            By.CSS_SELECTOR, f"input.action-select[value='{task.pk}']"
        ).click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("retry_failed")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()

    success = browser.find_element(By.CSS_SELECTOR, "ul.messagelist li.success")
    assert success.text == "Ran 2 tasks: 2 successful, 0 failed."
    assert DatabaseTask.objects.get(pk=first.pk).status == "SUCCESSFUL"
    assert DatabaseTask.objects.get(pk=second.pk).return_value == 7

    link = browser.find_element(By.CSS_SELECTOR, ".object-tools a.ddt-dashboard-link")
    assert link.text.lower() == "queue dashboard"
    link.click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Task queue dashboard"
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.ddt-chart")
    assert len(charts) == 2
    assert charts[0].size["width"] > 300
    bars = browser.find_elements(
        By.CSS_SELECTOR, "svg.ddt-chart rect.ddt-bar-successful"
    )
    assert bars, "the two retried tasks show up as successful bars"
    card = browser.find_element(By.CSS_SELECTOR, ".ddt-card-successful .ddt-card-count")
    assert card.text == "3"


def _seed_showcase() -> DatabaseTask:
    """A believable queue for the screenshots; returns a failed task."""
    now = timezone.now()
    paths = [
        "shop.tasks.send_receipt",
        "shop.tasks.sync_inventory",
        "mail.tasks.newsletter",
    ]
    for index in range(60):
        finished = now - timedelta(minutes=7 * index + 1)
        path = paths[index % 3]
        queue = "emails" if path.startswith("mail") else "default"
        if index % 9 == 4:
            failed_task(
                task_path=path,
                queue_name=queue,
                finished_at=finished,
                seconds=0.4,
                args=[index],
                enqueued_at=finished - timedelta(seconds=3),
                errors=[
                    {
                        "exception_class_path": "requests.exceptions.Timeout",
                        "traceback": "Traceback (most recent call last):\n"
                        '  File "/srv/shop/tasks.py", line 42, in run\n'
                        "    session.post(url, json=payload, timeout=5)\n"
                        "requests.exceptions.Timeout: Read timed out.\n",
                    }
                ],
            )
        else:
            finished_task(
                task_path=path,
                queue_name=queue,
                finished_at=finished,
                seconds=0.2 + (index % 5) * 0.7,
                args=[index],
                return_value={"ok": True, "order": 1000 + index},
                enqueued_at=finished - timedelta(seconds=5 + index % 7),
            )
    for index in range(6):
        make_task(
            task_path=paths[index % 3],
            queue_name="emails" if index % 3 == 2 else "default",
            priority=index % 3 * 5,
            args=[2000 + index],
            enqueued_at=now - timedelta(minutes=12 - index, seconds=7 * index),
            due_at=now - timedelta(minutes=12 - index),
        )
    make_task(
        task_path="reports.tasks.monthly",
        queue_name="reports",
        run_after=now + timedelta(hours=6),
        kwargs={"month": "2026-11", "format": "pdf"},
    )
    make_task(
        task_path="shop.tasks.sync_inventory",
        status="RUNNING",
        started_at=now - timedelta(seconds=40),
        last_attempted_at=now - timedelta(seconds=40),
        worker_id="web-1:4121:x8Kq2a",
        worker_ids=["web-1:4121:x8Kq2a"],
    )
    _seed_workers(now)
    return failed_task(
        task_path="shop.tasks.charge_card",
        queue_name="payments",
        priority=10,
        args=["order-1042"],
        kwargs={
            "amount": "19.99",
            "currency": "EUR",
            "note": "<script>alert(1)</script>",
        },
        worker_ids=["web-1:4121:x8Kq2a", "web-2:877:Pq03Lm"],
        errors=[
            {
                "exception_class_path": "payments.errors.CardDeclined",
                "traceback": "Traceback (most recent call last):\n"
                '  File "/srv/shop/payments.py", line 88, in charge_card\n'
                "    gateway.charge(order, amount)\n"
                "payments.errors.CardDeclined: insufficient funds\n",
            },
            {
                "exception_class_path": "payments.errors.CardDeclined",
                "traceback": "Traceback (most recent call last):\n"
                '  File "/srv/shop/payments.py", line 88, in charge_card\n'
                "    gateway.charge(order, amount)\n"
                "payments.errors.CardDeclined: card expired\n",
            },
        ],
    )


def _seed_workers(now) -> None:
    """Two live workers, the first running the showcase's RUNNING task, and
    a dead one not yet pruned."""
    backend = task_backends["default"]
    for worker_id, queues, concurrency, heard in (
        ("web-1:4121:x8Kq2a", [], 4, 2),
        ("web-2:877:Pq03Lm", ["emails", "reports"], 2, 4),
        ("web-3:512:Qm7d1c", [], 1, 3600),
    ):
        registry.register(backend, worker_id, queues=queues, concurrency=concurrency)
        host, pid, _ = worker_id.split(":")
        DatabaseTaskWorker.objects.filter(pk=worker_id).update(
            host=host,
            pid=int(pid),
            started_at=now - timedelta(hours=3, minutes=concurrency),
            last_heartbeat_at=now - timedelta(seconds=heard),
        )


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshots(logged_in, live_server, tmp_path, theme):
    from selenium.webdriver.common.by import By

    browser = logged_in
    target = Path(os.environ.get("DDT_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    task = _seed_showcase()
    browser.execute_script(
        f"localStorage.setItem('theme', '{theme}');"
        "localStorage.setItem('django.admin.navSidebarIsOpen', 'false');"
    )
    suffix = "" if theme == "light" else "-dark"
    pages = {
        f"admin-list{suffix}.png": reverse(
            "admin:django_database_task_databasetask_changelist"
        ),
        f"admin-detail{suffix}.png": reverse(
            "admin:django_database_task_databasetask_change", args=[str(task.pk)]
        ),
        f"admin-dashboard{suffix}.png": reverse(
            "admin:django_database_task_databasetask_dashboard"
        ),
    }
    for name, path in pages.items():
        browser.set_window_size(1600, 900)
        browser.get(live_server.url + path)
        assert (
            browser.find_element(By.TAG_NAME, "html").get_attribute("data-theme")
            == theme
        )
        assert "<script>alert(1)</script>" not in browser.title
        if "dashboard" in name:
            workers = browser.find_elements(
                By.CSS_SELECTOR, ".ddt-workers-table tbody tr"
            )
            assert len(workers) == 2
        bottom = browser.execute_script(
            "return document.getElementById('content').getBoundingClientRect().bottom"
        )
        cap = 1300 if "list" in name else 2200
        browser.set_window_size(1600, min(max(int(bottom) + 160, 700), cap))
        assert browser.save_screenshot(str(target / name))
        assert (target / name).stat().st_size > 10_000
