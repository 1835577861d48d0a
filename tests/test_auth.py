"""The bundled auth handlers accept the right credentials and refuse wrong,
missing, expired and replayed ones; bad configuration is a clear error."""

import time

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.tasks import task_backends
from django.test import RequestFactory

from django_database_task.auth import (
    ENDPOINTS,
    AllowAnyAuth,
    AuthHandler,
    BearerTokenAuth,
    HMACSignatureAuth,
    StaffUserAuth,
    get_auth_handlers,
    sign_request,
)
from django_database_task.backends import DatabaseTaskBackend
from tests.endpoints import tasks_setting

SECRET = "hmac-secret-for-tests"
TOKEN = "bearer-token-for-tests"
rf = RequestFactory()


@pytest.fixture
def backend(settings):
    settings.TASKS = tasks_setting()
    return task_backends["default"]


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


# BearerTokenAuth


@pytest.fixture
def bearer(settings, backend):
    settings.TASK_API_TOKEN = TOKEN
    return BearerTokenAuth(backend, SETTING="TASK_API_TOKEN")


def bearer_request(value: str | None):
    headers = {"Authorization": value} if value is not None else {}
    return rf.post("/tasks/run/", headers=headers)


def test_bearer_accepts_the_token(bearer):
    assert bearer.authenticate(bearer_request(f"Bearer {TOKEN}"))
    assert bearer.authenticate(bearer_request(f"bearer {TOKEN}"))


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer tökén",
    ],
)
def test_bearer_refuses_wrong_or_missing_tokens(bearer, value):
    assert not bearer.authenticate(bearer_request(value))


def test_bearer_reads_the_secret_from_an_environment_variable(backend, monkeypatch):
    monkeypatch.setenv("DDT_TEST_TOKEN", "from-env")
    handler = BearerTokenAuth(backend, ENV="DDT_TEST_TOKEN")
    assert handler.authenticate(bearer_request("Bearer from-env"))
    assert not handler.authenticate(bearer_request(f"Bearer {TOKEN}"))


@pytest.mark.parametrize("value", ["", None, 12345])
def test_bearer_refuses_an_empty_or_unset_setting(settings, backend, value):
    settings.TASK_API_TOKEN = value
    with pytest.raises(
        ImproperlyConfigured, match="setting TASK_API_TOKEN is empty, unset"
    ):
        BearerTokenAuth(backend, SETTING="TASK_API_TOKEN")


def test_bearer_refuses_a_missing_setting(backend):
    with pytest.raises(ImproperlyConfigured, match="NO_SUCH_SETTING is empty, unset"):
        BearerTokenAuth(backend, SETTING="NO_SUCH_SETTING")


def test_bearer_refuses_an_empty_environment_variable(backend, monkeypatch):
    monkeypatch.setenv("DDT_TEST_TOKEN", "")
    with pytest.raises(ImproperlyConfigured, match="DDT_TEST_TOKEN is empty"):
        BearerTokenAuth(backend, ENV="DDT_TEST_TOKEN")


@pytest.mark.parametrize("options", [{}, {"SETTING": "A", "ENV": "B"}])
def test_bearer_needs_exactly_one_secret_source(backend, options):
    with pytest.raises(ImproperlyConfigured, match="exactly one of the options"):
        BearerTokenAuth(backend, **options)


def test_bearer_refuses_unknown_options(bearer, backend):
    with pytest.raises(ImproperlyConfigured, match="unknown option.*TOKEN"):
        BearerTokenAuth(backend, SETTING="TASK_API_TOKEN", TOKEN="x")


# HMACSignatureAuth


@pytest.fixture
def signer(settings, backend):
    settings.TASK_HMAC_SECRET = SECRET
    return HMACSignatureAuth(backend, SETTING="TASK_HMAC_SECRET")


def signed(
    *,
    method="POST",
    path="/tasks/run/?x=1",
    body=b'{"max_tasks": 5}',
    timestamp=None,
    nonce="",
    secret=SECRET,
    sign_as=None,
):
    """A request, signed over ``sign_as`` (method, path, body) or itself."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed_method, signed_path, signed_body = sign_as or (method, path, body)
    signature = sign_request(
        secret, signed_method, signed_path, signed_body, timestamp, nonce
    )
    headers = {"X-Task-Timestamp": str(timestamp), "X-Task-Signature": signature}
    if nonce:
        headers["X-Task-Nonce"] = nonce
    return rf.generic(
        method, path, body, content_type="application/json", headers=headers
    )


def test_hmac_accepts_a_fresh_signature(signer):
    assert signer.authenticate(signed())
    assert signer.authenticate(signed(method="GET", path="/tasks/status/", body=b""))


def test_hmac_refuses_a_replayed_signature(signer):
    request = signed()
    assert signer.authenticate(request)
    assert not signer.authenticate(
        signed(timestamp=int(request.headers["X-Task-Timestamp"]))
    )


def test_hmac_replay_is_refused_by_every_handler_sharing_the_cache(signer, backend):
    timestamp = int(time.time())
    assert signer.authenticate(signed(timestamp=timestamp))
    other = HMACSignatureAuth(backend, SETTING="TASK_HMAC_SECRET")
    assert not other.authenticate(signed(timestamp=timestamp))


def test_hmac_nonce_makes_identical_requests_distinct(signer):
    timestamp = int(time.time())
    assert signer.authenticate(signed(timestamp=timestamp, nonce="a"))
    assert signer.authenticate(signed(timestamp=timestamp, nonce="b"))
    assert not signer.authenticate(signed(timestamp=timestamp, nonce="a"))


def test_hmac_nonce_is_signed(signer):
    timestamp = int(time.time())
    request = signed(timestamp=timestamp, nonce="a")
    request.META["HTTP_X_TASK_NONCE"] = "b"
    assert not signer.authenticate(request)


@pytest.mark.parametrize("age", [301, 3600, int(time.time())])
def test_hmac_refuses_an_expired_signature(signer, age):
    assert not signer.authenticate(signed(timestamp=int(time.time()) - age))


@pytest.mark.parametrize("skew", [301, 3600])
def test_hmac_refuses_a_signature_from_the_future(signer, skew):
    assert not signer.authenticate(signed(timestamp=int(time.time()) + skew))


def test_hmac_accepts_timestamps_inside_the_window(signer):
    now = int(time.time())
    assert signer.authenticate(signed(timestamp=now - 240))
    assert signer.authenticate(signed(timestamp=now + 240))


def test_hmac_max_age_option(settings, backend):
    settings.TASK_HMAC_SECRET = SECRET
    handler = HMACSignatureAuth(backend, SETTING="TASK_HMAC_SECRET", MAX_AGE=30)
    assert not handler.authenticate(signed(timestamp=int(time.time()) - 60))
    assert handler.authenticate(signed(timestamp=int(time.time()) - 10))


@pytest.mark.parametrize(
    "sign_as",
    [
        ("GET", "/tasks/run/?x=1", b'{"max_tasks": 5}'),
        ("POST", "/tasks/run-one/?x=1", b'{"max_tasks": 5}'),
        ("POST", "/tasks/run/?x=2", b'{"max_tasks": 5}'),
        ("POST", "/tasks/run/", b'{"max_tasks": 5}'),
        ("POST", "/tasks/run/?x=1", b'{"max_tasks": 50}'),
    ],
    ids=["method", "path", "query", "no-query", "body"],
)
def test_hmac_refuses_a_tampered_request(signer, sign_as):
    assert not signer.authenticate(signed(sign_as=sign_as))


def test_hmac_refuses_the_wrong_secret(signer):
    assert not signer.authenticate(signed(secret="another-secret"))


@pytest.mark.parametrize(
    "drop, replace",
    [
        ("HTTP_X_TASK_SIGNATURE", None),
        ("HTTP_X_TASK_TIMESTAMP", None),
        (None, ("HTTP_X_TASK_TIMESTAMP", "soon")),
        (None, ("HTTP_X_TASK_TIMESTAMP", "-5")),
        (None, ("HTTP_X_TASK_TIMESTAMP", "１２３")),
        (None, ("HTTP_X_TASK_SIGNATURE", "zz")),
        (None, ("HTTP_X_TASK_SIGNATURE", "é")),
    ],
)
def test_hmac_refuses_missing_or_malformed_headers(signer, drop, replace):
    request = signed()
    if drop:
        del request.META[drop]
    if replace:
        request.META[replace[0]] = replace[1]
    assert not signer.authenticate(request)


@pytest.mark.parametrize("timestamp", ["1" * 5000, "0" * 13, "9" * 13])
def test_hmac_refuses_a_timestamp_of_absurd_length(signer, timestamp):
    request = signed()
    request.META["HTTP_X_TASK_TIMESTAMP"] = timestamp
    assert signer.authenticate(request) is False


def test_hmac_accepts_a_zero_padded_timestamp(signer):
    """Up to 12 digits, leading zeros included, is a timestamp."""
    now = int(time.time())
    request = signed(timestamp=now)
    request.META["HTTP_X_TASK_TIMESTAMP"] = f"{now:012d}"
    request.META["HTTP_X_TASK_SIGNATURE"] = sign_request(
        SECRET, "POST", "/tasks/run/?x=1", b'{"max_tasks": 5}', now
    )
    assert signer.authenticate(request)


def test_hmac_reads_the_secret_from_an_environment_variable(backend, monkeypatch):
    monkeypatch.setenv("DDT_TEST_HMAC", SECRET)
    assert HMACSignatureAuth(backend, ENV="DDT_TEST_HMAC").authenticate(signed())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"MAX_AGE": 0}, "MAX_AGE must be a positive"),
        ({"MAX_AGE": "300"}, "MAX_AGE must be a positive"),
        ({"CACHE": "nope"}, "CACHE 'nope' is not in CACHES"),
        ({"SECRET": "x"}, "unknown option"),
    ],
)
def test_hmac_refuses_bad_options(signer, backend, options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        HMACSignatureAuth(backend, SETTING="TASK_HMAC_SECRET", **options)


def test_hmac_refuses_a_cache_that_remembers_nothing(settings, backend):
    """With a DummyCache every replay would be accepted."""
    settings.TASK_HMAC_SECRET = SECRET
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    }
    with pytest.raises(ImproperlyConfigured, match="DummyCache"):
        HMACSignatureAuth(backend, SETTING="TASK_HMAC_SECRET")


def test_hmac_refuses_an_empty_secret(settings, backend):
    settings.TASK_HMAC_SECRET = ""
    with pytest.raises(ImproperlyConfigured, match="is empty"):
        HMACSignatureAuth(backend, SETTING="TASK_HMAC_SECRET")


# StaffUserAuth and AllowAnyAuth


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, accepted",
    [
        ({"is_staff": True}, True),
        ({"is_staff": True, "is_superuser": True}, True),
        ({"is_staff": False}, False),
        ({"is_staff": False, "is_superuser": True}, False),
        ({"is_staff": True, "is_active": False}, False),
    ],
)
def test_staff_user(backend, django_user_model, fields, accepted):
    request = rf.post("/tasks/run/")
    request.user = django_user_model.objects.create_user("u", password="pw", **fields)
    assert StaffUserAuth(backend).authenticate(request) is accepted


def test_staff_user_refuses_anonymous_and_requests_without_a_user(backend):
    request = rf.post("/tasks/run/")
    assert not StaffUserAuth(backend).authenticate(request)
    request.user = AnonymousUser()
    assert not StaffUserAuth(backend).authenticate(request)


def test_allow_any(backend):
    assert AllowAnyAuth(backend).authenticate(rf.post("/tasks/purge/"))


def test_handlers_without_options_refuse_options(backend):
    with pytest.raises(ImproperlyConfigured, match="unknown option"):
        StaffUserAuth(backend, SUPERUSER_ONLY=True)


def test_the_base_class_must_be_subclassed(backend):
    with pytest.raises(NotImplementedError):
        AuthHandler(backend).authenticate(rf.get("/"))


# get_auth_handlers: configuration


def handlers_for(settings, auth_handlers):
    settings.TASKS = tasks_setting(AUTH_HANDLERS=auth_handlers)
    return get_auth_handlers(task_backends["default"])


def test_no_handlers_by_default(backend):
    assert get_auth_handlers(backend) == []


def test_handlers_in_order_with_their_endpoints(settings):
    settings.TASK_API_TOKEN = TOKEN
    handlers = handlers_for(
        settings,
        [
            {
                "HANDLER": "django_database_task.auth.BearerTokenAuth",
                "ENDPOINTS": ["run", "status"],
                "OPTIONS": {"SETTING": "TASK_API_TOKEN"},
            },
            {"HANDLER": StaffUserAuth},
        ],
    )
    assert [type(h.handler) for h in handlers] == [BearerTokenAuth, StaffUserAuth]
    assert handlers[0].endpoints == {"run", "status"}
    assert handlers[1].endpoints == set(ENDPOINTS)
    assert handlers[0].applies_to("run") and not handlers[0].applies_to("purge")


def test_handlers_are_built_once_per_backend(settings):
    settings.TASKS = tasks_setting(AUTH_HANDLERS=[{"HANDLER": AllowAnyAuth}])
    backend = task_backends["default"]
    assert get_auth_handlers(backend) is get_auth_handlers(backend)


@pytest.mark.parametrize(
    "auth_handlers, message",
    [
        ("django_database_task.auth.AllowAnyAuth", "must be a list"),
        ({"HANDLER": "x"}, "must be a list"),
        (5, "must be a list"),
        (["django_database_task.auth.AllowAnyAuth"], r"\[0\] must be a dict"),
        ([{"HANDLER": AllowAnyAuth, "ENDPOINT": ["run"]}], "unknown key.*ENDPOINT"),
        ([{}], "HANDLER must be the dotted path"),
        ([{"HANDLER": "no.such.Handler"}], "cannot import HANDLER"),
        ([{"HANDLER": "django.http.HttpRequest"}], "AuthHandler subclass"),
        ([{"HANDLER": AllowAnyAuth, "ENDPOINTS": "run"}], "must be a list of"),
        ([{"HANDLER": AllowAnyAuth, "ENDPOINTS": ["runs"]}], "must list some of"),
        ([{"HANDLER": AllowAnyAuth, "ENDPOINTS": []}], "must list some of"),
        ([{"HANDLER": AllowAnyAuth, "OPTIONS": ["x"]}], "OPTIONS must be a dict"),
        (
            [{"HANDLER": HMACSignatureAuth, "OPTIONS": {"MAX_AGE": 5}}],
            "exactly one of the options SETTING",
        ),
    ],
)
def test_bad_configuration_is_a_clear_error(settings, auth_handlers, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        handlers_for(settings, auth_handlers)


class BuiltinAuthBackend(DatabaseTaskBackend):
    """A backend contributing a handler of its own, as the Cloud Tasks
    backend does for OIDC."""

    def builtin_auth_handlers(self):
        return [
            {
                "HANDLER": "django_database_task.auth.AllowAnyAuth",
                "ENDPOINTS": ["execute"],
            }
        ]


def test_builtin_handlers_follow_the_configured_ones(settings):
    settings.TASKS = {
        "default": {
            "BACKEND": "tests.test_auth.BuiltinAuthBackend",
            "OPTIONS": {"AUTH_HANDLERS": [{"HANDLER": StaffUserAuth}]},
        }
    }
    handlers = get_auth_handlers(task_backends["default"])
    assert [type(h.handler) for h in handlers] == [StaffUserAuth, AllowAnyAuth]
    assert handlers[1].endpoints == {"execute"}


@pytest.mark.django_db
def test_builtin_handlers_open_their_endpoints_only(settings, client):
    settings.TASKS = {"default": {"BACKEND": "tests.test_auth.BuiltinAuthBackend"}}
    assert client.post("/tasks/execute/not-a-uuid/").status_code == 404
    assert client.get("/tasks/status/").status_code == 403
