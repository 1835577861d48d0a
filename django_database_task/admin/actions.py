"""Bulk actions on tasks. Each reports what it changed and what it skipped.

The status changes themselves are ``transitions``: guarded UPDATEs that
leave a task alone when a worker changed it meanwhile, which is counted here
as skipped.
"""

from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count
from django.tasks import TaskResultStatus
from django.tasks.exceptions import InvalidTaskBackend, TaskResultDoesNotExist
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..api import run_task_by_id
from ..engine import transitions

READY = TaskResultStatus.READY
RUNNING = TaskResultStatus.RUNNING
FAILED = TaskResultStatus.FAILED
SUCCESSFUL = TaskResultStatus.SUCCESSFUL

# Up to this many tasks run inside the admin request; more are left to the
# worker, so that the request never blocks for minutes.
INLINE_RUN_LIMIT = 3


def _status_counts(queryset) -> Counter:
    rows = queryset.order_by().values_list("status").annotate(n=Count("pk"))
    return Counter(dict(rows))


def _report_skipped(request, counts: Counter, reason: str, extra: int = 0) -> None:
    """Warn about the selected tasks left alone: how many, in which status,
    and why. ``extra`` counts tasks that changed status meanwhile."""
    parts = [
        _("%(count)d %(status)s") % {"count": n, "status": TaskResultStatus(s).label}
        for s, n in sorted(counts.items())
        if n
    ]
    if extra > 0:
        parts.append(
            ngettext(
                "%(count)d changed status meanwhile",
                "%(count)d changed status meanwhile",
                extra,
            )
            % {"count": extra}
        )
    total = sum(counts.values()) + max(extra, 0)
    if not total:
        return
    message = ngettext(
        "Skipped %(count)d task (%(details)s): %(reason)s",
        "Skipped %(count)d tasks (%(details)s): %(reason)s",
        total,
    ) % {"count": total, "details": ", ".join(parts), "reason": reason}
    messages.warning(request, message)


def _run_inline(request, queryset) -> int:
    """Run the few READY tasks now; returns how many had left READY by the
    time they were claimed."""
    rows = queryset.filter(status=READY).order_by().values_list("pk", "backend_name")
    outcomes: Counter = Counter()
    lost = 0
    for pk, backend_name in rows:
        try:
            result = run_task_by_id(str(pk), backend_name=backend_name)
        except InvalidTaskBackend as e:
            messages.error(
                request, _("Task %(id)s: %(error)s") % {"id": pk, "error": e}
            )
            continue
        except TaskResultDoesNotExist:
            result = None
        if result is None:
            lost += 1
        else:
            outcomes[result.status] += 1
    ran = outcomes.total()
    if ran:
        level = messages.SUCCESS if not outcomes[FAILED] else messages.WARNING
        messages.add_message(
            request,
            level,
            ngettext(
                "Ran %(count)d task: %(successful)d successful, %(failed)d failed.",
                "Ran %(count)d tasks: %(successful)d successful, %(failed)d failed.",
                ran,
            )
            % {
                "count": ran,
                "successful": outcomes[SUCCESSFUL],
                "failed": outcomes[FAILED],
            },
        )
    return lost


@admin.action(permissions=["change"], description=gettext_lazy("Run selected tasks"))
def run_selected(modeladmin, request, queryset) -> None:
    """READY tasks only. A few run now; more are made due now for the worker."""
    counts = _status_counts(queryset)
    ready = counts.pop(READY, 0)
    lost = 0
    if 0 < ready <= INLINE_RUN_LIMIT:
        lost = _run_inline(request, queryset)
    elif ready:
        marked = transitions.make_due(queryset)
        lost = ready - marked
        messages.success(
            request,
            ngettext(
                "Marked %(count)d task due now; a worker will run it.",
                "Marked %(count)d tasks due now; a worker will run them.",
                marked,
            )
            % {"count": marked},
        )
    _report_skipped(request, counts, _("only READY tasks can be run."), lost)


@admin.action(permissions=["change"], description=gettext_lazy("Retry failed tasks"))
def retry_failed(modeladmin, request, queryset) -> None:
    """FAILED tasks, cancelled ones included, go back to READY and run: a
    few now, more by the worker. Earlier errors are kept."""
    counts = _status_counts(queryset)
    failed = counts.pop(FAILED, 0)
    # Retried tasks are READY afterwards: follow them by id, not by the
    # selection, which may have been filtered to FAILED.
    selected = queryset.model.objects.using(queryset.db).filter(
        pk__in=list(
            queryset.order_by().filter(status=FAILED).values_list("pk", flat=True)
        )
    )
    moved = transitions.retry(selected)
    lost = failed - moved
    if 0 < moved <= INLINE_RUN_LIMIT:
        lost += _run_inline(request, selected)
    elif moved:
        messages.success(
            request,
            ngettext(
                "Moved %(count)d failed task back to READY; a worker will run it.",
                "Moved %(count)d failed tasks back to READY; a worker will run them.",
                moved,
            )
            % {"count": moved},
        )
    _report_skipped(request, counts, _("only FAILED tasks can be retried."), lost)


@admin.action(
    permissions=["change"], description=gettext_lazy("Requeue stuck running tasks")
)
def requeue_running(modeladmin, request, queryset) -> None:
    """RUNNING tasks whose worker died go back to READY. A task still running
    somewhere will run again, and its first outcome will not be stored."""
    counts = _status_counts(queryset)
    running = counts.pop(RUNNING, 0)
    moved = transitions.requeue(queryset)
    if moved:
        messages.success(
            request,
            ngettext(
                "Requeued %(count)d running task (back to READY).",
                "Requeued %(count)d running tasks (back to READY).",
                moved,
            )
            % {"count": moved},
        )
    _report_skipped(
        request, counts, _("only RUNNING tasks can be requeued."), running - moved
    )


@admin.action(permissions=["change"], description=gettext_lazy("Cancel ready tasks"))
def cancel_ready(modeladmin, request, queryset) -> None:
    """READY tasks become FAILED with a TaskCancelled error naming the user
    (Django's task statuses have no CANCELLED)."""
    counts = _status_counts(queryset)
    ready = counts.pop(READY, 0)
    user = request.user.get_username()
    reason = _("Cancelled by %(user)s from the Django admin.") % {"user": user}
    cancelled = transitions.cancel(queryset, reason)
    if cancelled:
        messages.success(
            request,
            ngettext(
                "Cancelled %(count)d ready task (marked FAILED).",
                "Cancelled %(count)d ready tasks (marked FAILED).",
                cancelled,
            )
            % {"count": cancelled},
        )
    _report_skipped(
        request, counts, _("only READY tasks can be cancelled."), ready - cancelled
    )


@admin.action(permissions=["delete"], description=gettext_lazy("Delete selected tasks"))
def delete_selected(modeladmin, request, queryset) -> TemplateResponse | None:
    """Delete every selected task that is not RUNNING, after a confirmation
    page; a running task's worker would otherwise lose its row. Named like
    Django's site-wide action, which it replaces for tasks."""
    counts = _status_counts(queryset)
    running = counts.pop(RUNNING, 0)
    if counts.total() and not request.POST.get("post"):
        return TemplateResponse(
            request,
            "admin/django_database_task/databasetask/delete_tasks_confirmation.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": _("Delete tasks"),
                "opts": modeladmin.model._meta,
                "counts": sorted(
                    (TaskResultStatus(s).label, n) for s, n in counts.items()
                ),
                "deletable": counts.total(),
                "running": running,
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across") == "1",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )
    deleted, _by_model = queryset.order_by().exclude(status=RUNNING).delete()
    if deleted:
        messages.success(
            request,
            ngettext("Deleted %(count)d task.", "Deleted %(count)d tasks.", deleted)
            % {"count": deleted},
        )
    _report_skipped(
        request,
        Counter({RUNNING: running}),
        _("running tasks are not deleted; requeue or wait for them first."),
        counts.total() - deleted,
    )
    return None


ACTIONS = [run_selected, retry_failed, requeue_running, cancel_ready, delete_selected]
