"""Verifying the OIDC tokens Cloud Tasks attaches to its requests.

Google signs an ID token for the service account named on the task. Anyone
with a Google account can get a token signed by Google, so a request is only
trusted when all of these hold: the signature verifies against Google's
current keys, the audience is ours, the issuer is Google, the token is
neither expired nor issued in the future, and the email is our service
account's (and verified).
"""

import base64
import json
import threading
import time
from dataclasses import dataclass

import requests
from google.auth import crypt

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW_SECONDS = 10
CERTS_TIMEOUT_SECONDS = 5
DEFAULT_CERTS_MAX_AGE = 300
# An unknown key id triggers a refetch (Google rotates keys), but not more
# often than this, so garbage tokens cannot make us hammer the certs URL.
MIN_REFETCH_INTERVAL = 30


class TokenRefused(Exception):
    """Why a request's token was not accepted; ``status`` is 401 when no
    usable token was sent at all, 403 when one was sent but is not good."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class _Certs:
    keys: dict[str, str]
    expires_at: float
    fetched_at: float


class CertificateCache:
    """Google's signing certificates, kept as long as ``Cache-Control`` allows."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_url: dict[str, _Certs] = {}

    def _fetch(self, url: str) -> _Certs:
        try:
            response = requests.get(url, timeout=CERTS_TIMEOUT_SECONDS)
            response.raise_for_status()
            keys = response.json()
        except (requests.RequestException, ValueError) as error:
            raise TokenRefused(
                f"Could not fetch the token signing certificates from {url}: {error}"
            ) from error
        if not isinstance(keys, dict):
            raise TokenRefused(f"The certificates at {url} are not a JSON object.")
        max_age = DEFAULT_CERTS_MAX_AGE
        for part in response.headers.get("Cache-Control", "").split(","):
            name, _, value = part.strip().partition("=")
            if name == "max-age" and value.isdigit():
                max_age = int(value)
        now = time.monotonic()
        return _Certs(keys=keys, expires_at=now + max_age, fetched_at=now)

    def get(self, url: str, key_id: str) -> str | None:
        """The certificate for ``key_id``, refetching once when it is unknown
        (a freshly rotated key) or the cached set has expired."""
        with self._lock:
            certs = self._by_url.get(url)
            now = time.monotonic()
            stale = certs is None or certs.expires_at <= now
            unknown = certs is not None and key_id not in certs.keys
            if stale or (unknown and now - certs.fetched_at >= MIN_REFETCH_INTERVAL):
                certs = self._by_url[url] = self._fetch(url)
            return certs.keys.get(key_id)

    def clear(self) -> None:
        with self._lock:
            self._by_url.clear()


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
        header = json.loads(_decode_part(header_part))
        claims = json.loads(_decode_part(payload_part))
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
    verifier = crypt.RSAVerifier.from_string(certificate)
    signed = f"{header_part}.{payload_part}".encode()
    if not verifier.verify(signed, signature):
        raise TokenRefused("OIDC token signature does not verify.")
    _check_claims(claims, audience=audience, email=service_account_email)
    return claims


def _check_claims(claims: dict, *, audience: str, email: str) -> None:
    now = time.time()
    expiry, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expiry, int | float) or not isinstance(issued, int | float):
        raise TokenRefused("OIDC token has no valid 'exp' and 'iat' claims.")
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
