"""Transient database errors are retried, then raised; a connection a
failure left unfit is closed."""

import pytest
from django.db import OperationalError, connection, transaction

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


def left_out_of_autocommit():
    """Fails as a commit whose database went away does: Django's atomic()
    could not switch autocommit back on."""
    transaction.set_autocommit(False)
    raise OperationalError("server has gone away")


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_last_failure_left_unfit_is_closed():
    with pytest.raises(OperationalError):
        transient.tolerate(left_out_of_autocommit, using="default")
    assert connection.connection is None
    # The next atomic block opens a transaction of its own, and commits it.
    with transaction.atomic():
        assert not connection.get_autocommit()
    assert connection.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_a_connection_left_out_of_autocommit_is_closed():
    connection.ensure_connection()
    transaction.set_autocommit(False)
    transient.close_broken_connections()
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_healthy_connections_stay_open_whatever_their_age():
    connection.ensure_connection()
    kept = connection.connection
    transient.close_broken_connections()
    assert connection.connection is kept


@pytest.mark.django_db
def test_a_connection_inside_an_atomic_block_is_left_to_it():
    connection.ensure_connection()
    transient.close_broken_connections()
    assert connection.in_atomic_block
    assert not connection.closed_in_transaction
    assert not connection.needs_rollback
