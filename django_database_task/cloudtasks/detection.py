"""Where are we running? Project, region and public URL from the environment.

Only the standard library is used here, and the metadata server is asked only
on App Engine or Cloud Run (or when ``GCE_METADATA_HOST`` points at one), so a
laptop never waits on an address that does not answer.
"""

import os
import urllib.error
import urllib.request

METADATA_DEFAULT_HOST = "metadata.google.internal"
METADATA_TIMEOUT = 2.0


def is_cloud_run() -> bool:
    """Cloud Run sets ``K_SERVICE`` to the service name."""
    return bool(os.environ.get("K_SERVICE"))


def is_app_engine() -> bool:
    """App Engine sets ``GAE_SERVICE`` and ``GAE_VERSION``."""
    return bool(os.environ.get("GAE_SERVICE") and os.environ.get("GAE_VERSION"))


def _metadata_available() -> bool:
    return is_cloud_run() or is_app_engine() or "GCE_METADATA_HOST" in os.environ


def read_metadata(path: str) -> str | None:
    """One value from the metadata server (``project/project-id``...), or None
    when there is no metadata server or it does not know the value."""
    if not _metadata_available():
        return None
    host = os.environ.get("GCE_METADATA_HOST") or METADATA_DEFAULT_HOST
    request = urllib.request.Request(
        f"http://{host}/computeMetadata/v1/{path}",
        headers={"Metadata-Flavor": "Google"},
    )
    # The metadata server is link-local: never go through a proxy for it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=METADATA_TIMEOUT) as response:
            return response.read().decode().strip() or None
    except (OSError, urllib.error.URLError, ValueError):
        return None


def detect_gcp_project() -> str | None:
    """``GOOGLE_CLOUD_PROJECT``, else the metadata server's project id."""
    return os.environ.get("GOOGLE_CLOUD_PROJECT") or read_metadata("project/project-id")


def detect_gcp_location() -> str | None:
    """``CLOUD_RUN_REGION``, else the region the metadata server reports
    (``projects/123/regions/us-central1`` gives ``us-central1``)."""
    region = os.environ.get("CLOUD_RUN_REGION") or read_metadata("instance/region")
    return region.rsplit("/", 1)[-1] if region else None


def detect_task_handler_host() -> str | None:
    """The public URL (scheme and host, no path) of this very deployment, or
    None; callers append the path.

    App Engine: ``https://VERSION-dot-PROJECT.appspot.com`` for the default
    service, ``https://VERSION-dot-SERVICE-dot-PROJECT.appspot.com`` for the
    others, so that a task runs on the version that enqueued it. Cloud Run:
    the deterministic ``https://SERVICE-PROJECT_NUMBER.REGION.run.app``.
    """
    if is_app_engine():
        project = detect_gcp_project()
        if not project:
            return None
        service = os.environ["GAE_SERVICE"]
        version = os.environ["GAE_VERSION"]
        if service == "default":
            return f"https://{version}-dot-{project}.appspot.com"
        return f"https://{version}-dot-{service}-dot-{project}.appspot.com"
    if is_cloud_run():
        number = read_metadata("project/numeric-project-id")
        region = detect_gcp_location()
        if not (number and region):
            return None
        return f"https://{os.environ['K_SERVICE']}-{number}.{region}.run.app"
    return None
