from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls)]

if settings.TASK_METRICS_TOKEN:
    # GET /tasks/metrics/ for Prometheus; the backend's AUTH_HANDLERS open
    # that endpoint alone (see settings).
    urlpatterns.append(path("tasks/", include("django_database_task.urls")))
