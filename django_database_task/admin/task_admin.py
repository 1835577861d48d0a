"""The ModelAdmin for tasks: a fast, read-only list and detail, the bulk
actions, and the dashboard URL."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import DurationField, ExpressionWrapper, F
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..sql import JSONArrayLength
from .actions import ACTIONS
from .columns import (
    EMPTY,
    attempt_history,
    error_list,
    format_duration,
    pretty_json,
    short_datetime,
    status_badge,
)
from .config import admin_database
from .dashboard import dashboard_context
from .filters import BackendFilter, QueueFilter
from .pagination import EstimatedCountPaginator
from .search import search_tasks

DASHBOARD_URL_NAME = "django_database_task_databasetask_dashboard"


class DatabaseTaskAdmin(admin.ModelAdmin):
    list_display = [
        "short_id",
        "task_path",
        "queue_name",
        "priority",
        "status_display",
        "enqueued_display",
        "run_after_display",
        "duration_display",
        "attempts_display",
    ]
    list_display_links = ["short_id"]
    list_filter = ["status", QueueFilter, BackendFilter]
    search_fields = ["task_path"]
    search_help_text = gettext_lazy(
        "A full task id, or part of a task path (for example myapp.tasks.send)."
    )
    ordering = ["-enqueued_at"]
    list_per_page = 50
    show_full_result_count = False
    # Facet counts would COUNT the whole table once per filter choice.
    show_facets = admin.ShowFacets.NEVER
    empty_value_display = EMPTY
    paginator = EstimatedCountPaginator
    actions = ACTIONS
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "task_path",
                    "status_display",
                    "backend_name",
                    "queue_name",
                    "priority",
                ]
            },
        ),
        (
            gettext_lazy("Arguments and result"),
            {"fields": ["args_display", "kwargs_display", "return_value_display"]},
        ),
        (gettext_lazy("Errors"), {"fields": ["errors_display"]}),
        (gettext_lazy("Attempts"), {"fields": ["attempt_history_display"]}),
        (
            gettext_lazy("Timing"),
            {
                "fields": [
                    "enqueued_at",
                    "run_after",
                    "due_at",
                    "started_at",
                    "last_attempted_at",
                    "finished_at",
                    "duration_display",
                ]
            },
        ),
    ]
    readonly_fields = [
        "id",
        "task_path",
        "status_display",
        "backend_name",
        "queue_name",
        "priority",
        "enqueued_at",
        "run_after",
        "due_at",
        "started_at",
        "last_attempted_at",
        "finished_at",
        "duration_display",
        "args_display",
        "kwargs_display",
        "return_value_display",
        "errors_display",
        "attempt_history_display",
    ]

    class Media:
        css = {"all": ["django_database_task/admin.css"]}

    # Tasks come from the queue, not from a form: nobody adds or edits one
    # here. ``change`` without an object is what the actions need.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .using(admin_database())
            .annotate(
                duration=ExpressionWrapper(
                    F("finished_at") - F("last_attempted_at"),
                    output_field=DurationField(),
                ),
                attempt_count=JSONArrayLength("worker_ids"),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        return search_tasks(queryset, search_term), False

    def get_urls(self):
        dashboard = path(
            "dashboard/",
            self.admin_site.admin_view(self.dashboard_view),
            name=DASHBOARD_URL_NAME,
        )
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = self.model._default_manager.using(admin_database())
        return TemplateResponse(
            request,
            "admin/django_database_task/databasetask/dashboard.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Task queue dashboard"),
                **dashboard_context(queryset),
            },
        )

    @admin.display(description=gettext_lazy("ID"), ordering="id")
    def short_id(self, obj):
        """The first 8 hex digits keep the column narrow; the whole id is in
        the tooltip, the link and the search."""
        full = str(obj.id)
        return format_html('<span title="{}">{}…</span>', full, full[:8])

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, obj):
        return status_badge(obj.status)

    @admin.display(description=gettext_lazy("enqueued at"), ordering="enqueued_at")
    def enqueued_display(self, obj) -> str:
        return short_datetime(obj.enqueued_at)

    @admin.display(description=gettext_lazy("run after"), ordering="run_after")
    def run_after_display(self, obj) -> str:
        return short_datetime(obj.run_after)

    @admin.display(description=gettext_lazy("duration"), ordering="duration")
    def duration_display(self, obj) -> str:
        duration = getattr(obj, "duration", None)
        if duration is None and obj.finished_at and obj.last_attempted_at:
            duration = obj.finished_at - obj.last_attempted_at
        return format_duration(duration)

    @admin.display(description=gettext_lazy("attempts"), ordering="attempt_count")
    def attempts_display(self, obj) -> int:
        return len(obj.worker_ids or [])

    @admin.display(description=gettext_lazy("arguments"))
    def args_display(self, obj):
        return pretty_json(obj.args)

    @admin.display(description=gettext_lazy("keyword arguments"))
    def kwargs_display(self, obj):
        return pretty_json(obj.kwargs)

    @admin.display(description=gettext_lazy("return value"))
    def return_value_display(self, obj):
        if obj.return_value is None and obj.status != "SUCCESSFUL":
            return EMPTY
        return pretty_json(obj.return_value)

    @admin.display(description=gettext_lazy("errors"))
    def errors_display(self, obj):
        return error_list(obj.errors)

    @admin.display(description=gettext_lazy("attempt history"))
    def attempt_history_display(self, obj):
        return attempt_history(obj)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "dashboard_url": reverse(f"{self.admin_site.name}:{DASHBOARD_URL_NAME}"),
        }
        return super().changelist_view(request, extra_context)
