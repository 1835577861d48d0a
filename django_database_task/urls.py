"""The bundled URLconf: every endpoint, refusing requests until the task
backend's ``OPTIONS["AUTH_HANDLERS"]`` accepts them.

    path("tasks/", include("django_database_task.urls"))
"""

from django.urls import path

from .metrics.views import MetricsView
from .views import (
    ExecuteTaskView,
    PurgeCompletedTasksView,
    RunOneTaskView,
    RunTasksView,
    TaskStatusView,
)

# <str:...> rather than <uuid:...>: a malformed id then gets the view's JSON
# 404 instead of Django's HTML one.
urlpatterns = [
    path("run/", RunTasksView.as_view(require_auth=True), name="run_tasks"),
    path("run-one/", RunOneTaskView.as_view(require_auth=True), name="run_one_task"),
    path("status/", TaskStatusView.as_view(require_auth=True), name="task_status"),
    path(
        "execute/<str:task_id>/",
        ExecuteTaskView.as_view(require_auth=True),
        name="execute_task",
    ),
    path(
        "purge/",
        PurgeCompletedTasksView.as_view(require_auth=True),
        name="purge_completed_tasks",
    ),
    path("metrics/", MetricsView.as_view(require_auth=True), name="task_metrics"),
]
