"""Retries of a transient error are DEBUG, not WARNING: a worker waiting out
an outage says so once (engine/worker.py), and a warning per retried
statement would bury that line under dozens."""

import logging

import pytest
from django.db import OperationalError

from django_database_task.engine import transient


def refused():
    raise OperationalError("connection refused")


def test_retries_are_logged_at_debug_and_the_last_failure_is_raised(
    caplog, monkeypatch
):
    monkeypatch.setattr(transient, "DELAYS", (0, 0, 0))
    caplog.set_level(logging.DEBUG, logger=transient.logger.name)
    with pytest.raises(OperationalError):
        transient.tolerate(refused, using="default")
    assert [record.levelno for record in caplog.records] == [logging.DEBUG] * 3
    assert "connection refused; retrying in 0 s." in caplog.text
