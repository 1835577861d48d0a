"""List filters whose choices come from settings or recent tasks, never from a
scan of the whole table."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .config import configured_queues, database_backends

# When any queue name is allowed, the choices are the queues of this many
# most recent tasks: a DISTINCT over the whole table would scan all of it.
RECENT_TASKS_FOR_QUEUES = 10_000


class QueueFilter(admin.SimpleListFilter):
    """Queues the backends allow; when one allows any queue name, the queues
    of the most recent tasks (an index range, not a table scan). Any queue
    can still be filtered on by URL, as the dashboard's links do."""

    title = _("queue")
    parameter_name = "queue_name"

    def lookups(self, request, model_admin):
        queues = configured_queues()
        if queues is None:
            recent = (
                model_admin.get_queryset(request)
                .order_by("-enqueued_at")
                .values_list("queue_name", flat=True)[:RECENT_TASKS_FOR_QUEUES]
            )
            queues = sorted(set(recent) | ({self.value()} if self.value() else set()))
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
