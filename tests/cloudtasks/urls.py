"""Both mounting styles: the bundled URLconf, and the execute view wrapped in
the OIDC decorator as the README shows."""

from django.urls import include, path

from django_database_task.cloudtasks import verify_cloud_tasks_oidc
from django_database_task.views import ExecuteTaskView

from .conftest import SERVICE_ACCOUNT

FIXED_AUDIENCE = "https://myapp.example.com"

urlpatterns = [
    path("tasks/", include("django_database_task.urls")),
    path(
        "oidc/execute/<uuid:task_id>/",
        verify_cloud_tasks_oidc(ExecuteTaskView.as_view()),
        name="oidc_execute",
    ),
    path(
        "fixed/execute/<uuid:task_id>/",
        verify_cloud_tasks_oidc(
            ExecuteTaskView.as_view(),
            audience=FIXED_AUDIENCE,
            service_account_email=SERVICE_ACCOUNT,
        ),
        name="fixed_execute",
    ),
]
