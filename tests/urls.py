from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponseForbidden
from django.urls import include, path

from django_database_task.views import (
    ExecuteTaskView,
    PurgeCompletedTasksView,
    RunOneTaskView,
    RunTasksView,
    TaskStatusView,
)


def require_api_token(view_func):
    """The specification's token decorator (with functools.wraps, so that the
    view stays CSRF-exempt)."""

    @wraps(view_func)
    def wrapper(request, *args, **kwargs):
        token = request.headers.get("Authorization", "").replace("Bearer ", "")
        if token != settings.TASK_API_TOKEN:
            return HttpResponseForbidden("Invalid token")
        return view_func(request, *args, **kwargs)

    return wrapper


urlpatterns = [
    path("admin/", admin.site.urls),
    # The bundled URLconf, which enforces the backends' AUTH_HANDLERS.
    path("tasks/", include("django_database_task.urls")),
    # Mounted one by one, as in the specification's security section.
    path("staff/run/", staff_member_required(RunTasksView.as_view())),
    path("staff/run-one/", staff_member_required(RunOneTaskView.as_view())),
    path("staff/status/", staff_member_required(TaskStatusView.as_view())),
    path(
        "staff/execute/<uuid:task_id>/",
        staff_member_required(ExecuteTaskView.as_view()),
    ),
    path("staff/purge/", staff_member_required(PurgeCompletedTasksView.as_view())),
    path("token/run/", require_api_token(RunTasksView.as_view())),
    path("token/purge/", require_api_token(PurgeCompletedTasksView.as_view())),
    path(
        "token/execute/<str:task_id>/",
        require_api_token(ExecuteTaskView.as_view()),
    ),
]
