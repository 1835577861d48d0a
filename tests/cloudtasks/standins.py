"""Small HTTP servers on 127.0.0.1 that stand in for Google's services."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class StandInServer:
    """A threaded HTTP server; subclasses answer in ``handle``."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict]] = []
        self._server = None

    def start(self, port: int = 0) -> "StandInServer":
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                stand_in.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, payload = stand_in.handle(
                    self.command, path, self.headers, body
                )
                data = (
                    payload.encode()
                    if isinstance(payload, str)
                    else json.dumps(payload).encode()
                )
                self.send_response(status)
                self.send_header(
                    "Content-Type",
                    "application/text"
                    if isinstance(payload, str)
                    else "application/json",
                )
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def handle(self, method, path, headers, body):
        raise NotImplementedError


class MetadataServer(StandInServer):
    """The metadata server of App Engine and Cloud Run: project, region and
    an access token for the runtime service account."""

    ACCESS_TOKEN = "stand-in-access-token"

    def __init__(self):
        super().__init__()
        self.values = {
            "project/project-id": "stand-in-project",
            "project/numeric-project-id": "123456789",
            "instance/region": "projects/123456789/regions/europe-west9",
            "universe/universe-domain": "googleapis.com",
        }

    def handle(self, method, path, headers, body):
        flavor = {"Metadata-Flavor": "Google"}
        if headers.get("Metadata-Flavor") != "Google":
            return 403, {}, "Missing Metadata-Flavor header"
        if path == "/":
            return 200, flavor, "ok"
        key = path.removeprefix("/computeMetadata/v1/")
        if key == "instance/service-accounts/default/":
            return (
                200,
                flavor,
                {
                    "email": "app@stand-in-project.iam.gserviceaccount.com",
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                    "aliases": ["default"],
                },
            )
        if key == "instance/service-accounts/default/token":
            return (
                200,
                flavor,
                {
                    "access_token": self.ACCESS_TOKEN,
                    "expires_in": 3600,
                    "token_type": "Bearer",
                },
            )
        if key in self.values:
            return 200, flavor, self.values[key]
        return 404, flavor, "Not found"
