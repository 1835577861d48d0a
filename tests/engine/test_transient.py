"""Transient database errors are retried, then raised."""

import pytest
from django.db import OperationalError

from django_database_task.engine import transient


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(transient, "DELAYS", (0, 0, 0))


def flaky(failures):
    calls = []

    def operation():
        calls.append(1)
        if len(calls) <= failures:
            raise OperationalError("database is locked")
        return len(calls)

    return operation


@pytest.mark.django_db
def test_an_operation_that_recovers_returns_its_result():
    assert transient.tolerate(flaky(2), using="default") == 3


@pytest.mark.django_db
def test_an_operation_that_keeps_failing_raises_the_last_error():
    with pytest.raises(OperationalError, match="database is locked"):
        transient.tolerate(flaky(10), using="default")


def test_other_errors_are_not_retried():
    def broken():
        raise ValueError("not transient")

    with pytest.raises(ValueError):
        transient.tolerate(broken, using="default")
