"""A signing key of our own, standing in for Google's: tokens signed with it
and its certificate served over HTTP the way Google serves its own."""

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .standins import StandInServer

GOOGLE_ISSUER = "https://accounts.google.com"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SigningKey:
    """An RSA key with a self-signed certificate, like one of Google's."""

    def __init__(self, key_id: str):
        self.key_id = key_id
        self.private_key = rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, key_id)])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .sign(self.private_key, hashes.SHA256())
        )
        self.certificate_pem = certificate.public_bytes(
            serialization.Encoding.PEM
        ).decode()

    def sign(self, claims: dict, *, alg: str = "RS256", key_id: str | None = None):
        header = {"alg": alg, "kid": key_id or self.key_id, "typ": "JWT"}
        return self.sign_parts(json.dumps(header), json.dumps(claims))

    def sign_parts(self, header: str, payload: str) -> str:
        """A token of exactly this header and payload text, signed."""
        signed = f"{b64url(header.encode())}.{b64url(payload.encode())}"
        signature = self.private_key.sign(
            signed.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signed}.{b64url(signature)}"

    def id_token(self, *, audience: str, email: str, **overrides) -> str:
        """An ID token like the ones Google issues for a service account."""
        now = int(time.time())
        claims = {
            "aud": audience,
            "azp": "1234567890",
            "email": email,
            "email_verified": True,
            "exp": now + 3600,
            "iat": now,
            "iss": GOOGLE_ISSUER,
            "sub": "1234567890",
        }
        claims.update(overrides)
        return self.sign({k: v for k, v in claims.items() if v is not None})


class CertsServer(StandInServer):
    """Serves ``{key id: PEM certificate}`` at /oauth2/v1/certs, as Google does.

    Tests can make it fail (``status``), answer ``body`` instead, let the
    keys expire at once (``max_age``), or hold every answer until ``gate``
    is set; ``arrived`` is set by the first request.
    """

    def __init__(self, *keys: SigningKey):
        super().__init__()
        self.keys = list(keys)
        self.fetches = 0
        self.status = 200
        self.body: str | None = None
        self.max_age = 3600
        self.gate: threading.Event | None = None
        self.arrived = threading.Event()
        self._count = threading.Lock()

    @property
    def url(self) -> str:
        return f"{self.base_url}/oauth2/v1/certs"

    def handle(self, method, path, headers, body):
        if method != "GET" or path != "/oauth2/v1/certs":
            return 404, {}, {"error": "not found"}
        with self._count:
            self.fetches += 1
        self.arrived.set()
        if self.gate is not None:
            self.gate.wait(60)
        if self.status != 200:
            return self.status, {}, {"error": "stand-in failure"}
        certs = self.body or {key.key_id: key.certificate_pem for key in self.keys}
        return 200, {"Cache-Control": f"public, max-age={self.max_age}"}, certs
