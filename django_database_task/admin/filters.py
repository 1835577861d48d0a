"""List filters whose choices come from settings, not from a scan of the table."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .config import configured_queues, database_backends


class QueueFilter(admin.SimpleListFilter):
    """Queues the backends allow; when one allows any queue name, the
    distinct names stored (one grouped scan, only on the list page)."""

    title = _("queue")
    parameter_name = "queue_name"

    def lookups(self, request, model_admin):
        queues = configured_queues()
        if queues is None:
            queues = (
                model_admin.get_queryset(request)
                .order_by("queue_name")
                .values_list("queue_name", flat=True)
                .distinct()
            )
        return [(name, name) for name in queues]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(queue_name=self.value())
        return queryset


class BackendFilter(admin.SimpleListFilter):
    """The configured database task backends."""

    title = _("backend")
    parameter_name = "backend_name"

    def lookups(self, request, model_admin):
        return [(b.alias, b.alias) for b in database_backends()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(backend_name=self.value())
        return queryset
