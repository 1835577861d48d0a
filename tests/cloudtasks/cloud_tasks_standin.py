"""A stand-in for the Cloud Tasks REST API: it records created tasks, refuses
a second task of the same name like Cloud Tasks does, deletes tasks, and can
deliver each task's HTTP request with a signed OIDC token, retrying on
non-2xx answers."""

import base64
import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime

from .keys import SigningKey
from .standins import MetadataServer, StandInServer

CREATE_PATH = re.compile(
    r"^/v2/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/queues/(?P<queue>[^/]+)/tasks$"
)
TASK_PATH = re.compile(
    r"^/v2/(?P<name>projects/[^/]+/locations/[^/]+/queues/[^/]+/tasks/[^/]+)$"
)
POST = (1, "POST")
NOT_FOUND = (404, {}, {"error": {"code": 404, "status": "NOT_FOUND"}})


@dataclass
class Delivery:
    """Every answer the task handler gave to one Cloud Task."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class CloudTasksServer(StandInServer):
    def __init__(self, signing_key: SigningKey, *, deliver: bool = False):
        super().__init__()
        self.signing_key = signing_key
        self.deliver = deliver
        self.max_attempts = 3
        self.missing_queues: set[str] = set()
        self.created: list[dict] = []  # {"project", "location", "queue", "task"}
        self.names: set[str] = set()  # every name ever used: never reusable
        self.live: set[str] = set()  # created and not deleted
        self.delete_error: int | None = None  # answer deletes with this status
        self.deliveries: dict[str, Delivery] = {}
        self._lock = threading.Lock()

    def task(self, task_id: str) -> dict:
        """The one created task named after ``task_id``."""
        found = [c for c in self.created if c["task"]["name"].endswith(f"/{task_id}")]
        assert len(found) == 1, f"{len(found)} tasks created for {task_id}"
        return found[0]

    def has(self, task_id: str) -> bool:
        """Whether the task named after ``task_id`` exists (not deleted)."""
        return self.task(task_id)["task"]["name"] in self.live

    def handle(self, method, path, headers, body):
        if headers.get("Authorization") != f"Bearer {MetadataServer.ACCESS_TOKEN}":
            return 401, {}, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
        if method == "DELETE" and TASK_PATH.match(path):
            return self.delete(TASK_PATH.match(path).group("name"))
        match = CREATE_PATH.match(path)
        if method != "POST" or not match:
            return NOT_FOUND
        task = json.loads(body)["task"]
        if match.group("queue") in self.missing_queues:
            return 404, {}, {"error": {"code": 404, "message": "Queue does not exist."}}
        if not task.get("name", "").startswith(path.removeprefix("/v2/") + "/"):
            return 400, {}, {"error": {"code": 400, "message": "Bad task name."}}
        with self._lock:
            if task["name"] in self.names:
                return (
                    409,
                    {},
                    {
                        "error": {
                            "code": 409,
                            "message": "Requested entity already exists",
                            "status": "ALREADY_EXISTS",
                        }
                    },
                )
            self.names.add(task["name"])
            self.live.add(task["name"])
            self.created.append({**match.groupdict(), "task": task})
        if self.deliver:
            self.deliver_task(task["name"].rsplit("/", 1)[-1])
        return 200, {}, task

    def delete(self, name: str):
        if self.delete_error is not None:
            status = self.delete_error
            return status, {}, {"error": {"code": status, "message": "Stand-in."}}
        with self._lock:
            if name not in self.live:
                return NOT_FOUND
            self.live.remove(name)
        return 200, {}, {}

    def deliver_task(self, task_id: str) -> Delivery:
        """Call the task's URL (again), in the background, as Cloud Tasks would."""
        task = self.task(task_id)["task"]
        delivery = self.deliveries[task["name"]] = Delivery()
        threading.Thread(
            target=self._deliver, args=(task, delivery), daemon=True
        ).start()
        return delivery

    def _deliver(self, task: dict, delivery: Delivery) -> None:
        http = task["httpRequest"]
        assert http.get("httpMethod") in POST
        schedule = task.get("scheduleTime")
        if schedule:
            delay = datetime.fromisoformat(schedule).timestamp() - time.time()
            time.sleep(max(0.0, delay))
        headers = {}
        oidc = http.get("oidcToken")
        if oidc:
            token = self.signing_key.id_token(
                audience=oidc.get("audience") or http["url"],
                email=oidc["serviceAccountEmail"],
            )
            headers["Authorization"] = f"Bearer {token}"
        body = base64.b64decode(http["body"]) if http.get("body") else b""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for attempt in range(self.max_attempts):
            request = urllib.request.Request(
                http["url"], data=body, headers=headers, method="POST"
            )
            try:
                with opener.open(request, timeout=30) as response:
                    status, payload = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, payload = error.code, error.read()
            delivery.statuses.append(status)
            delivery.bodies.append(json.loads(payload or b"null"))
            if 200 <= status < 300:
                break
            time.sleep(0.05 * (attempt + 1))
        delivery.done.set()
