"""Google Cloud Tasks for serverless deployments (App Engine, Cloud Run).

Needs the ``cloudtasks`` extra: ``pip install django-database-task[cloudtasks]``.
"""

try:
    import google.auth  # noqa: F401
    from google.cloud import tasks_v2  # noqa: F401
except ImportError as error:
    raise ImportError(
        "django_database_task.cloudtasks needs the Google Cloud client libraries: "
        "pip install 'django-database-task[cloudtasks]' "
        f"(missing: {error.name or error})."
    ) from error

from .auth import CloudTasksOIDCAuth, verify_cloud_tasks_oidc
from .backend import CloudTasksDatabaseBackend
from .detection import (
    detect_gcp_location,
    detect_gcp_project,
    detect_task_handler_host,
    is_app_engine,
    is_cloud_run,
)

__all__ = [
    "CloudTasksDatabaseBackend",
    "CloudTasksOIDCAuth",
    "detect_gcp_location",
    "detect_gcp_project",
    "detect_task_handler_host",
    "is_app_engine",
    "is_cloud_run",
    "verify_cloud_tasks_oidc",
]
