"""The certificate cache against a certs stand-in that can fail or be slow:
failures are not refetched on every request, stale keys beat no keys, and a
slow fetch holds up only the requests that have no keys to use."""

import json
import logging
import threading

import pytest

from django_database_task.cloudtasks import oidc
from django_database_task.cloudtasks.oidc import TokenRefused, verify_token

from .conftest import SERVICE_ACCOUNT
from .keys import CertsServer

AUDIENCE = "https://tasks.example.com"
WAIT = 10  # seconds; a bound on waiting, not a timed assertion


@pytest.fixture
def certs(signing_key):
    server = CertsServer(signing_key).start()
    yield server
    if server.gate is not None:
        server.gate.set()
    server.stop()


@pytest.fixture
def token(signing_key):
    return signing_key.id_token(audience=AUDIENCE, email=SERVICE_ACCOUNT)


def verify(token, certs):
    return verify_token(
        token, audience=AUDIENCE, service_account_email=SERVICE_ACCOUNT, certs_url=certs
    )


class Verifier(threading.Thread):
    """Verifies one token in a thread; ``done`` once it has an outcome."""

    def __init__(self, token, url):
        super().__init__(daemon=True)
        self.token, self.url = token, url
        self.done = threading.Event()
        self.claims = self.error = None

    def run(self):
        try:
            self.claims = verify(self.token, self.url)
        except Exception as error:
            self.error = error
        self.done.set()


def test_failed_fetch_is_remembered_for_a_while(certs, token, monkeypatch):
    certs.status = 503
    for _ in range(5):
        with pytest.raises(TokenRefused, match="Could not fetch the token signing"):
            verify(token, certs.url)
    assert certs.fetches == 1
    # Once the window has passed, the next request tries again.
    monkeypatch.setattr(oidc, "FAILED_FETCH_RETRY_SECONDS", 0)
    certs.status = 200
    assert verify(token, certs.url)["email"] == SERVICE_ACCOUNT
    assert certs.fetches == 2


def test_stale_keys_are_used_when_the_refetch_fails(certs, token, caplog):
    certs.max_age = 0  # expired as soon as fetched
    assert verify(token, certs.url)["email"] == SERVICE_ACCOUNT
    certs.status = 500
    with caplog.at_level(logging.WARNING, "django_database_task.cloudtasks"):
        for _ in range(3):
            assert verify(token, certs.url)["email"] == SERVICE_ACCOUNT
    # One failed refetch, then the failure window.
    assert certs.fetches == 2
    assert "using the previous certificates" in caplog.text


def test_deeply_nested_certificates_are_a_failed_fetch(certs, token):
    certs.body = "[" * 100_000
    with pytest.raises(TokenRefused, match="nested too deeply"):
        verify(token, certs.url)


def test_certificate_that_does_not_load_refuses(certs, token, signing_key):
    certs.body = json.dumps({signing_key.key_id: "not a PEM"})
    with pytest.raises(TokenRefused, match="does not load"):
        verify(token, certs.url)


def test_slow_fetch_does_not_hold_up_a_thread_with_keys(certs, token, monkeypatch):
    monkeypatch.setattr(oidc, "CERTS_TIMEOUT_SECONDS", 60)
    certs.max_age = 0
    assert verify(token, certs.url)
    certs.gate, certs.arrived = threading.Event(), threading.Event()
    fetching = Verifier(token, certs.url)
    fetching.start()
    assert certs.arrived.wait(WAIT), "the refetch never reached the stand-in"
    other = Verifier(token, certs.url)
    other.start()
    # Answered from the stale keys while the refetch still hangs.
    assert other.done.wait(WAIT), "held up by another thread's fetch"
    assert other.claims["email"] == SERVICE_ACCOUNT
    assert not fetching.done.is_set()
    certs.gate.set()
    assert fetching.done.wait(WAIT)
    assert fetching.claims["email"] == SERVICE_ACCOUNT
    assert certs.fetches == 2


def test_thread_without_keys_waits_for_the_fetch_in_progress(certs, token, monkeypatch):
    monkeypatch.setattr(oidc, "CERTS_TIMEOUT_SECONDS", 60)
    certs.gate = threading.Event()
    first = Verifier(token, certs.url)
    first.start()
    assert certs.arrived.wait(WAIT), "the fetch never reached the stand-in"
    second = Verifier(token, certs.url)
    second.start()
    # No keys to use: it can only wait for the fetch.
    assert not second.done.wait(0.3)
    certs.gate.set()
    assert first.done.wait(WAIT) and second.done.wait(WAIT)
    assert first.claims["email"] == second.claims["email"] == SERVICE_ACCOUNT
    # It used that fetch instead of making its own.
    assert certs.fetches == 1


def test_thread_without_keys_shares_a_failed_fetch(certs, token, monkeypatch):
    monkeypatch.setattr(oidc, "CERTS_TIMEOUT_SECONDS", 60)
    certs.status = 500
    certs.gate = threading.Event()
    threads = [Verifier(token, certs.url) for _ in range(3)]
    threads[0].start()
    assert certs.arrived.wait(WAIT), "the fetch never reached the stand-in"
    for thread in threads[1:]:
        thread.start()
    certs.gate.set()
    for thread in threads:
        assert thread.done.wait(WAIT)
        assert isinstance(thread.error, TokenRefused)
    assert certs.fetches == 1
