"""The shipped Japanese locale."""

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.test.utils import override_settings
from django.utils import translation

import django_database_task
from django_database_task.admin.columns import format_duration, status_badge
from django_database_task.models import DatabaseTask
from tests.factories import make_task, messages_of

LOCALE = Path(django_database_task.__file__).parent / "locale" / "ja" / "LC_MESSAGES"


@pytest.mark.skipif(not shutil.which("msgfmt"), reason="msgfmt is not installed")
def test_compiled_catalog_matches_the_po_file(tmp_path):
    compiled = tmp_path / "django.mo"
    subprocess.run(
        ["msgfmt", "--check", "-o", str(compiled), str(LOCALE / "django.po")],
        check=True,
    )
    assert compiled.read_bytes() == (LOCALE / "django.mo").read_bytes()


def test_model_and_admin_strings_are_translated():
    with translation.override("ja"):
        assert str(DatabaseTask._meta.verbose_name_plural) == "データベースタスク"
        assert str(DatabaseTask._meta.get_field("task_path").verbose_name) == (
            "タスクパス"
        )
        assert "完了" in status_badge("SUCCESSFUL")
        assert format_duration(timedelta(seconds=125)) == ("2 分 5 秒")


@pytest.mark.django_db
@override_settings(LANGUAGE_CODE="ja")
def test_pages_and_messages_in_japanese(
    admin_client, changelist_url, dashboard_url, post_action
):
    task = make_task()
    with translation.override("ja"):
        html = admin_client.get(changelist_url).content.decode()
        assert "選択したタスクを実行" in html
        assert "キューのダッシュボード" in html
        assert "スループット" in admin_client.get(dashboard_url).content.decode()
        response = post_action("cancel_ready", [task])
        assert messages_of(response) == [
            "待機中の 1 件のタスクをキャンセルしました（FAILED にしました）。"
        ]
