"""Detection from the environment App Engine and Cloud Run provide (set here
as environment variables) and the metadata server stand-in."""

import socket

import pytest

from django_database_task.cloudtasks import (
    detect_gcp_location,
    detect_gcp_project,
    detect_task_handler_host,
    is_app_engine,
    is_cloud_run,
)


def test_cloud_run(monkeypatch, metadata_server):
    monkeypatch.setenv("K_SERVICE", "web")
    assert is_cloud_run() is True
    assert is_app_engine() is False
    # Cloud Run sets no project variable: the metadata server knows it.
    assert detect_gcp_project() == "stand-in-project"
    assert detect_gcp_location() == "europe-west9"
    # A full URL: callers append the path to it.
    assert detect_task_handler_host() == "https://web-123456789.europe-west9.run.app"


def test_cloud_run_variables_win_over_the_metadata_server(monkeypatch, metadata_server):
    monkeypatch.setenv("K_SERVICE", "api")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("CLOUD_RUN_REGION", "asia-northeast1")
    metadata_server.values["project/numeric-project-id"] = "42"
    assert detect_gcp_project() == "env-project"
    assert detect_gcp_location() == "asia-northeast1"
    assert detect_task_handler_host() == "https://api-42.asia-northeast1.run.app"


def test_app_engine(monkeypatch, metadata_server):
    monkeypatch.setenv("GAE_SERVICE", "default")
    monkeypatch.setenv("GAE_VERSION", "20260101t120000")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "gae-project")
    metadata_server.values["instance/region"] = "projects/1/regions/us-central1"
    assert is_app_engine() is True
    assert is_cloud_run() is False
    assert detect_gcp_project() == "gae-project"
    assert detect_gcp_location() == "us-central1"
    # The version that enqueued the task runs it (blue/green deployments);
    # the default service has no service part in its host name.
    assert detect_task_handler_host() == (
        "https://20260101t120000-dot-gae-project.appspot.com"
    )


def test_app_engine_other_service(monkeypatch, metadata_server):
    monkeypatch.setenv("GAE_SERVICE", "worker")
    monkeypatch.setenv("GAE_VERSION", "v7")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "gae-project")
    assert detect_task_handler_host() == (
        "https://v7-dot-worker-dot-gae-project.appspot.com"
    )


def test_neither(monkeypatch, metadata_server):
    # Not on Google Cloud, and no metadata server configured: nothing is
    # detected and nothing is asked over the network.
    monkeypatch.delenv("GCE_METADATA_HOST")
    before = len(metadata_server.requests)
    assert is_cloud_run() is False
    assert is_app_engine() is False
    assert detect_gcp_project() is None
    assert detect_gcp_location() is None
    assert detect_task_handler_host() is None
    assert len(metadata_server.requests) == before


def test_project_variable_works_anywhere(monkeypatch):
    monkeypatch.delenv("GCE_METADATA_HOST")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "mine")
    monkeypatch.setenv("CLOUD_RUN_REGION", "europe-west1")
    assert (detect_gcp_project(), detect_gcp_location()) == ("mine", "europe-west1")
    assert detect_task_handler_host() is None


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_metadata_server_detects_nothing(monkeypatch, closed_port):
    monkeypatch.setenv("K_SERVICE", "web")
    monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{closed_port}")
    assert detect_gcp_project() is None
    assert detect_gcp_location() is None
    assert detect_task_handler_host() is None


def test_metadata_server_without_the_value(monkeypatch, metadata_server):
    monkeypatch.setenv("K_SERVICE", "web")
    del metadata_server.values["project/numeric-project-id"]
    assert detect_task_handler_host() is None


def test_app_engine_without_project(monkeypatch, metadata_server):
    monkeypatch.setenv("GAE_SERVICE", "default")
    monkeypatch.setenv("GAE_VERSION", "v1")
    del metadata_server.values["project/project-id"]
    assert detect_task_handler_host() is None
