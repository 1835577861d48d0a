"""Verifying the OIDC tokens Cloud Tasks attaches to its requests.

Google signs an ID token for the service account named on the task. Anyone
with a Google account can get a token signed by Google, so a request is only
trusted when all of these hold: the signature verifies against Google's
current keys, the audience is ours, the issuer is Google, the token is
neither expired nor issued in the future nor meant to live longer than
Google's hour, and the email is our service account's (and verified).
"""

import base64
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TypeGuard

import requests
from google.auth import crypt

from ..validation import parse_untrusted_json

logger = logging.getLogger("django_database_task.cloudtasks")

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW_SECONDS = 10
# Google's ID tokens live one hour; a longer-lived token is not one of them.
MAX_TOKEN_LIFETIME_SECONDS = 3600
CERTS_TIMEOUT_SECONDS = 5
DEFAULT_CERTS_MAX_AGE = 300
# An unknown key id triggers a refetch (Google rotates keys), but not more
# often than this, so garbage tokens cannot make us hammer the certs URL.
MIN_REFETCH_INTERVAL = 30
# After a failed fetch, requests use what they have (or are refused) for this
# long instead of each waiting on the certs URL again.
FAILED_FETCH_RETRY_SECONDS = 15


class TokenRefused(Exception):
    """Why a request's token was not accepted; ``status`` is 401 when no
    usable token was sent at all, 403 when one was sent but is not good.

    Only the fixed 401 messages reach the caller; 403 ones are logged, so
    they may name URLs, audiences and accounts.
    """

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class _Outcome:
    """The last good keys of one certs URL and how its last fetch went."""

    keys: dict[str, str] | None = None
    expires_at: float = 0.0
    attempted_at: float = 0.0
    error: str | None = None  # why the last fetch failed; None if it worked

    def wants_fetch(self, key_id: str, now: float) -> bool:
        if self.error is not None and now - self.attempted_at < (
            FAILED_FETCH_RETRY_SECONDS
        ):
            return False
        if self.keys is None or self.expires_at <= now:
            return True
        return key_id not in self.keys and (
            now - self.attempted_at >= MIN_REFETCH_INTERVAL
        )


@dataclass
class _Source:
    outcome: _Outcome = field(default_factory=_Outcome)
    # Held while fetching, so one thread fetches and the others either wait
    # for it (no keys yet) or use the stale keys meanwhile.
    fetching: threading.Lock = field(default_factory=threading.Lock)


def _max_age(cache_control: str) -> int:
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        if name == "max-age" and value.isdigit():
            return int(value)
    return DEFAULT_CERTS_MAX_AGE


def _download(url: str) -> tuple[dict[str, str], int]:
    """The ``{key id: PEM}`` at ``url`` and for how long to keep it."""
    try:
        response = requests.get(url, timeout=CERTS_TIMEOUT_SECONDS)
        response.raise_for_status()
        keys = parse_untrusted_json(response.content)
    except (requests.RequestException, ValueError) as error:
        raise ValueError(
            f"Could not fetch the token signing certificates from {url}: {error}"
        ) from None
    if not isinstance(keys, dict) or not all(
        isinstance(pem, str) for pem in keys.values()
    ):
        raise ValueError(f"The certificates at {url} are not a JSON object of PEMs.")
    return keys, _max_age(response.headers.get("Cache-Control", ""))


class CertificateCache:
    """Google's signing certificates, kept as long as ``Cache-Control`` allows.

    The network is never used under the cache-wide lock: a slow certs URL
    delays only requests that have no keys to check against.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._sources: dict[str, _Source] = {}

    def get(self, url: str, key_id: str) -> str | None:
        """The certificate for ``key_id``, refetching once when it is unknown
        (a freshly rotated key) or the cached set has expired; the last good
        keys when a refetch fails."""
        with self._lock:
            source = self._sources.setdefault(url, _Source())
        if source.outcome.wants_fetch(key_id, time.monotonic()):
            if source.outcome.keys is None:
                with source.fetching:
                    self._refresh(url, source, key_id)
            elif source.fetching.acquire(blocking=False):
                try:
                    self._refresh(url, source, key_id)
                finally:
                    source.fetching.release()
        outcome = source.outcome
        if outcome.keys is None:
            raise TokenRefused(outcome.error or f"No certificates from {url}.")
        return outcome.keys.get(key_id)

    def _refresh(self, url: str, source: _Source, key_id: str) -> None:
        """Fetch, unless the thread we waited for just did; ``fetching`` held."""
        previous = source.outcome
        if not previous.wants_fetch(key_id, time.monotonic()):
            return
        try:
            keys, max_age = _download(url)
        except ValueError as error:
            if previous.keys is not None:
                logger.warning("%s; using the previous certificates.", error)
            source.outcome = _Outcome(
                keys=previous.keys,
                expires_at=previous.expires_at,
                attempted_at=time.monotonic(),
                error=str(error),
            )
            return
        now = time.monotonic()
        source.outcome = _Outcome(keys=keys, expires_at=now + max_age, attempted_at=now)

    def clear(self) -> None:
        with self._lock:
            self._sources.clear()


certificates = CertificateCache()


def _decode_part(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer ...`` header value."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused(
            "Missing OIDC token: send 'Authorization: Bearer <token>' "
            "(Cloud Tasks does when the task has an OIDC token).",
            status=401,
        )
    return token.strip()


def verify_token(
    token: str,
    *,
    audience: str,
    service_account_email: str,
    certs_url: str = GOOGLE_CERTS_URL,
) -> dict:
    """The claims of ``token`` if Google signed it for ``audience`` and our
    service account; TokenRefused saying what is wrong otherwise."""
    try:
        header_part, payload_part, signature_part = token.split(".")
        header = parse_untrusted_json(_decode_part(header_part))
        claims = parse_untrusted_json(_decode_part(payload_part))
        signature = _decode_part(signature_part)
    except ValueError:
        raise TokenRefused("Malformed OIDC token: not a signed JWT.", 401) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenRefused("Malformed OIDC token: not a signed JWT.", 401)
    if header.get("alg") != "RS256":
        raise TokenRefused(
            f"OIDC token algorithm {header.get('alg')!r} is not accepted; "
            "Google signs with RS256."
        )
    certificate = certificates.get(certs_url, str(header.get("kid")))
    if certificate is None:
        raise TokenRefused("OIDC token is signed by an unknown key.")
    try:
        verifier = crypt.RSAVerifier.from_string(certificate)
    except ValueError:
        raise TokenRefused(
            f"The certificate of key {header.get('kid')!r} does not load."
        ) from None
    signed = f"{header_part}.{payload_part}".encode()
    if not verifier.verify(signed, signature):
        raise TokenRefused("OIDC token signature does not verify.")
    _check_claims(claims, audience=audience, email=service_account_email)
    return claims


def _is_time(value: object) -> TypeGuard[int | float]:
    """JSON numbers only: not booleans, not NaN or Infinity (which Python's
    JSON parser accepts and every comparison would let through)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def _check_claims(claims: dict, *, audience: str, email: str) -> None:
    now = time.time()
    expiry, issued = claims.get("exp"), claims.get("iat")
    if not (_is_time(expiry) and _is_time(issued)):
        raise TokenRefused("OIDC token has no valid 'exp' and 'iat' claims.")
    if not 0 <= expiry - issued <= MAX_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise TokenRefused(
            f"OIDC token lifetime of {expiry - issued} seconds is not within "
            f"Google's {MAX_TOKEN_LIFETIME_SECONDS}."
        )
    if expiry + CLOCK_SKEW_SECONDS < now:
        raise TokenRefused("OIDC token has expired.")
    if issued - CLOCK_SKEW_SECONDS > now:
        raise TokenRefused("OIDC token is issued in the future.")
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    if audience not in audiences:
        raise TokenRefused(
            f"OIDC token audience {claims.get('aud')!r} is not the expected "
            f"{audience!r}."
        )
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise TokenRefused(
            f"OIDC token issuer {claims.get('iss')!r} is not accounts.google.com."
        )
    claimed_email = claims.get("email")
    if not isinstance(claimed_email, str) or claimed_email.lower() != email.lower():
        raise TokenRefused(
            f"OIDC token is for {claims.get('email')!r}, not the configured "
            "service account."
        )
    if claims.get("email_verified") is not True:
        raise TokenRefused("OIDC token email is not verified.")
