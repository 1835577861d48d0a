"""OIDC tokens: accepted only when every check passes; refused without telling
the caller more than that, the reason going to the log."""

import json
import logging
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.tasks import TaskResultStatus
from django.test import RequestFactory

from django_database_task.cloudtasks import CloudTasksOIDCAuth, oidc
from django_database_task.models import DatabaseTask
from tests.tasks import add

from .conftest import SERVICE_ACCOUNT
from .keys import SigningKey
from .urls import FIXED_AUDIENCE

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.cloudtasks.urls")]
AUDIENCE = "https://tasks.example.com"
REFUSED = {"error": "OIDC token refused."}
LOGGER = "django_database_task.cloudtasks"
NESTED = "[" * 100_000


@pytest.fixture
def backend(configure):
    return configure(OIDC_SERVICE_ACCOUNT_EMAIL=SERVICE_ACCOUNT)


@pytest.fixture(scope="module")
def impostor_key():
    """Same key id as the real one, different key: a forged signature."""
    return SigningKey("stand-in-key-1")


def post(client, task_id, token=None, prefix="oidc", authorization=None):
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    return client.post(f"/{prefix}/execute/{task_id}/", headers=headers)


def test_valid_token_runs_the_task(client, backend, signing_key):
    result = add.enqueue(2, 3)
    token = signing_key.id_token(audience=AUDIENCE, email=SERVICE_ACCOUNT)
    response = post(client, result.id, token)
    assert response.status_code == 200
    assert response.json()["executed"] is True
    assert DatabaseTask.objects.get(pk=result.id).return_value == 5


def test_explicit_audience_of_the_decorator(client, backend, signing_key):
    result = add.enqueue(2, 3)
    token = signing_key.id_token(audience=FIXED_AUDIENCE, email=SERVICE_ACCOUNT)
    assert post(client, result.id, token, prefix="fixed").status_code == 200
    # The backend's own audience is not the one this view expects.
    other = signing_key.id_token(audience=AUDIENCE, email=SERVICE_ACCOUNT)
    assert post(client, result.id, other, prefix="fixed").status_code == 403


def refusals(signing_key, impostor_key):
    """Case: (token, status through the decorator, reason in the log)."""
    now = int(time.time())
    good = {"audience": AUDIENCE, "email": SERVICE_ACCOUNT}
    header = json.dumps({"alg": "RS256", "kid": signing_key.key_id})
    claims = json.dumps({"aud": AUDIENCE, "email": SERVICE_ACCOUNT})
    return {
        "bad signature": (
            impostor_key.id_token(**good),
            403,
            "signature does not verify",
        ),
        "unknown key": (
            SigningKey("rotated-away").id_token(**good),
            403,
            "unknown key",
        ),
        "wrong audience": (
            signing_key.id_token(
                audience="https://evil.example.com", email=good["email"]
            ),
            403,
            "audience 'https://evil.example.com' is not the expected",
        ),
        "wrong issuer": (
            signing_key.id_token(**good, iss="https://evil.example.com"),
            403,
            "issuer 'https://evil.example.com' is not accounts.google.com",
        ),
        "expired": (
            signing_key.id_token(**good, iat=now - 7200, exp=now - 3600),
            403,
            "has expired",
        ),
        "issued in the future": (
            signing_key.id_token(**good, iat=now + 3600, exp=now + 7200),
            403,
            "issued in the future",
        ),
        "wrong email": (
            signing_key.id_token(audience=AUDIENCE, email="someone@gmail.com"),
            403,
            "is for 'someone@gmail.com', not the configured service account",
        ),
        "unverified email": (
            signing_key.id_token(**good, email_verified=False),
            403,
            "email is not verified",
        ),
        "unsigned": (
            signing_key.sign({"aud": AUDIENCE}, alg="none"),
            403,
            "algorithm 'none' is not accepted",
        ),
        "malformed": ("not-a-jwt", 401, "Malformed OIDC token"),
        "expiry NaN": (
            signing_key.id_token(**good, exp=float("nan")),
            403,
            "no valid 'exp' and 'iat' claims",
        ),
        "expiry Infinity": (
            signing_key.id_token(**good, exp=float("inf")),
            403,
            "no valid 'exp' and 'iat' claims",
        ),
        "issued true": (
            signing_key.id_token(**good, iat=True),
            403,
            "no valid 'exp' and 'iat' claims",
        ),
        "lives a year": (
            signing_key.id_token(**good, iat=now, exp=now + 365 * 86400),
            403,
            "lifetime of 31536000 seconds is not within Google's 3600",
        ),
        "lives forever": (
            signing_key.id_token(**good, iat=now, exp=10**400),
            403,
            "lifetime of",
        ),
        "expires before issued": (
            signing_key.id_token(**good, iat=now + 5, exp=now),
            403,
            "lifetime of -5 seconds",
        ),
        "nested header": (
            signing_key.sign_parts(NESTED, claims),
            401,
            "Malformed OIDC token",
        ),
        "nested payload": (
            signing_key.sign_parts(header, NESTED),
            401,
            "Malformed OIDC token",
        ),
    }


CASES = [
    "bad signature",
    "unknown key",
    "wrong audience",
    "wrong issuer",
    "expired",
    "issued in the future",
    "wrong email",
    "unverified email",
    "unsigned",
    "malformed",
    "expiry NaN",
    "expiry Infinity",
    "issued true",
    "lives a year",
    "lives forever",
    "expires before issued",
    "nested header",
    "nested payload",
]


def refusal_logged(caplog, message):
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING
    assert message in record.getMessage()
    assert not record.exc_info


@pytest.mark.parametrize("case", CASES)
def test_decorator_refuses(client, backend, signing_key, impostor_key, case, caplog):
    result = add.enqueue(2, 3)
    token, status, message = refusals(signing_key, impostor_key)[case]
    with caplog.at_level(logging.WARNING, LOGGER):
        response = post(client, result.id, token)
    assert response.status_code == status
    if status == 401:
        assert response.json() == {"error": "Malformed OIDC token: not a signed JWT."}
        assert response["WWW-Authenticate"].startswith("Bearer")
    else:
        # Nothing about our audience, service account or certs URL.
        assert response.json() == REFUSED
    refusal_logged(caplog, message)
    assert DatabaseTask.objects.get(pk=result.id).status == TaskResultStatus.READY


@pytest.mark.parametrize("case", CASES)
def test_bundled_urlconf_refuses(
    client, backend, signing_key, impostor_key, case, caplog
):
    result = add.enqueue(2, 3)
    token, _, message = refusals(signing_key, impostor_key)[case]
    with caplog.at_level(logging.WARNING, LOGGER):
        response = post(client, result.id, token, prefix="tasks")
    assert response.status_code == 403
    assert "error" in response.json()
    refusal_logged(caplog, message)
    assert DatabaseTask.objects.get(pk=result.id).status == TaskResultStatus.READY


@pytest.mark.parametrize("authorization", [None, "", "Basic abc", "Bearer "])
def test_missing_token_is_401(client, backend, authorization):
    result = add.enqueue(2, 3)
    response = post(client, result.id, authorization=authorization)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "Missing OIDC token" in response.json()["error"]
    # The bundled URLconf refuses too.
    bundled = post(client, result.id, prefix="tasks", authorization=authorization)
    assert bundled.status_code == 403
    assert DatabaseTask.objects.get(pk=result.id).status == TaskResultStatus.READY


def test_bundled_urlconf_accepts_on_execute_and_purge_only(
    client, backend, signing_key
):
    token = signing_key.id_token(audience=AUDIENCE, email=SERVICE_ACCOUNT)
    headers = {"Authorization": f"Bearer {token}"}
    result = add.enqueue(2, 3)
    assert post(client, result.id, token, prefix="tasks").status_code == 200
    assert client.get("/tasks/purge/?days=1", headers=headers).status_code == 200
    assert client.get("/tasks/status/", headers=headers).status_code == 403
    assert client.post("/tasks/run/", headers=headers).status_code == 403


def test_without_service_account_nothing_is_accepted(
    client, configure, signing_key, caplog
):
    configure()
    result = add.enqueue(2, 3)
    token = signing_key.id_token(audience=AUDIENCE, email=SERVICE_ACCOUNT)
    with caplog.at_level(logging.WARNING, LOGGER):
        response = post(client, result.id, token)
    assert response.status_code == 403
    # How to configure it is for the log, not for whoever calls.
    assert response.json() == REFUSED
    refusal_logged(caplog, "no service account email")
    assert post(client, result.id, token, prefix="tasks").status_code == 403
    assert DatabaseTask.objects.get(pk=result.id).status == TaskResultStatus.READY


def test_handler_options_override_the_backend(configure, signing_key):
    backend = configure()
    with pytest.raises(ImproperlyConfigured, match="SERVICE_ACCOUNT_EMAIL"):
        CloudTasksOIDCAuth(backend)
    handler = CloudTasksOIDCAuth(
        backend, AUDIENCE="https://aud.example.com", SERVICE_ACCOUNT_EMAIL="x@y.z"
    )
    good = signing_key.id_token(audience="https://aud.example.com", email="x@y.z")
    request = RequestFactory().post("/", headers={"Authorization": f"Bearer {good}"})
    assert handler.authenticate(request) is True
    with pytest.raises(ImproperlyConfigured, match="unknown option"):
        CloudTasksOIDCAuth(backend, SERVICE_ACCOUNT_EMAIL="x@y.z", AUDEINCE="typo")


def test_certificates_are_fetched_once_and_refetched_for_a_new_key(
    client, backend, signing_key, certs_server, monkeypatch
):
    before = certs_server.fetches
    for _ in range(3):
        result = add.enqueue(2, 3)
        token = signing_key.id_token(audience=AUDIENCE, email=SERVICE_ACCOUNT)
        assert post(client, result.id, token).status_code == 200
    assert certs_server.fetches == before + 1
    # Google rotates keys: a token signed by a key published since is found
    # by fetching again (at most once per MIN_REFETCH_INTERVAL).
    new_key = SigningKey("stand-in-key-2")
    certs_server.keys.append(new_key)
    monkeypatch.setattr(oidc, "MIN_REFETCH_INTERVAL", 0)
    try:
        result = add.enqueue(2, 3)
        token = new_key.id_token(audience=AUDIENCE, email=SERVICE_ACCOUNT)
        assert post(client, result.id, token).status_code == 200
    finally:
        certs_server.keys.remove(new_key)
    assert certs_server.fetches == before + 2


def test_unreachable_certificates_refuse(client, configure, signing_key, caplog):
    configure(
        OIDC_SERVICE_ACCOUNT_EMAIL=SERVICE_ACCOUNT,
        OIDC_CERTS_URL="http://127.0.0.1:9/certs",
    )
    result = add.enqueue(2, 3)
    token = signing_key.id_token(audience=AUDIENCE, email=SERVICE_ACCOUNT)
    with caplog.at_level(logging.WARNING, LOGGER):
        response = post(client, result.id, token)
    assert response.status_code == 403
    assert response.json() == REFUSED
    refusal_logged(
        caplog,
        "Could not fetch the token signing certificates from http://127.0.0.1:9/certs",
    )


def test_handler_without_audience_refuses_and_logs(
    configure, signing_key, caplog, monkeypatch
):
    monkeypatch.delenv("GCE_METADATA_HOST")
    handler = CloudTasksOIDCAuth(
        configure(TASK_HANDLER_URL=None), SERVICE_ACCOUNT_EMAIL=SERVICE_ACCOUNT
    )
    token = signing_key.id_token(audience=AUDIENCE, email=SERVICE_ACCOUNT)
    request = RequestFactory().post("/", headers={"Authorization": f"Bearer {token}"})
    with caplog.at_level(logging.WARNING, LOGGER):
        assert handler.authenticate(request) is False
    refusal_logged(caplog, "has no audience")
