"""Stand-ins for Google on 127.0.0.1: metadata server, Cloud Tasks, certs.

google-auth reads GCE_METADATA_HOST when it is imported, so the metadata
stand-in starts, and the variables are set, when this conftest loads.
"""

import importlib
import os
import sys
import tempfile

import pytest
from django.tasks import task_backends

from .standins import MetadataServer

METADATA = MetadataServer().start()
os.environ["GCE_METADATA_HOST"] = METADATA.host
os.environ["GCE_METADATA_IP"] = METADATA.host
# Never pick up a developer's own gcloud credentials.
os.environ["CLOUDSDK_CONFIG"] = tempfile.mkdtemp(prefix="ddt-gcloud-")
os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
os.environ["NO_PROXY"] = ",".join(
    filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])
)
if "google.auth.compute_engine._metadata" in sys.modules:
    importlib.reload(sys.modules["google.auth.compute_engine._metadata"])

from django_database_task.cloudtasks import oidc  # noqa: E402

from .cloud_tasks_standin import CloudTasksServer  # noqa: E402
from .keys import CertsServer, SigningKey  # noqa: E402

SERVICE_ACCOUNT = "invoker@stand-in-project.iam.gserviceaccount.com"
BACKEND = "django_database_task.cloudtasks.CloudTasksDatabaseBackend"
ENVIRONMENT = ("K_SERVICE", "GAE_SERVICE", "GAE_VERSION", "GOOGLE_CLOUD_PROJECT")


@pytest.fixture(autouse=True)
def google_environment(monkeypatch):
    """Not on App Engine or Cloud Run unless a test says so; fresh certs."""
    for name in (*ENVIRONMENT, "CLOUD_RUN_REGION"):
        monkeypatch.delenv(name, raising=False)
    oidc.certificates.clear()
    yield
    oidc.certificates.clear()


@pytest.fixture
def metadata_server():
    values = dict(METADATA.values)
    yield METADATA
    METADATA.values = values


@pytest.fixture(scope="session")
def signing_key():
    return SigningKey("stand-in-key-1")


@pytest.fixture(scope="session")
def certs_server(signing_key):
    server = CertsServer(signing_key).start()
    yield server
    server.stop()


@pytest.fixture
def cloud_tasks(signing_key):
    server = CloudTasksServer(signing_key).start()
    yield server
    server.stop()


@pytest.fixture
def configure(settings, cloud_tasks, certs_server):
    """Make the default (or ``alias``) backend a Cloud Tasks backend talking
    to the stand-ins; returns the backend."""

    def configure(alias="default", **options):
        settings.TASKS = {
            "default": {
                "BACKEND": "django_database_task.backends.DatabaseTaskBackend",
                "QUEUES": [],
            },
            alias: {
                "BACKEND": BACKEND,
                "QUEUES": [],
                "OPTIONS": {
                    "CLOUD_TASKS_API_ENDPOINT": cloud_tasks.base_url,
                    "CLOUD_TASKS_PROJECT": "proj",
                    "CLOUD_TASKS_LOCATION": "europe-west9",
                    "TASK_HANDLER_URL": "https://tasks.example.com/tasks/execute/"
                    "{task_id}/",
                    "OIDC_CERTS_URL": certs_server.url,
                    "CLOUD_TASKS_TIMEOUT": 2,
                    **options,
                },
            },
        }
        return task_backends[alias]

    return configure
