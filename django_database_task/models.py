import uuid

from django.db import models
from django.tasks import TaskResultStatus
from django.utils.translation import gettext_lazy as _


class DatabaseTask(models.Model):
    """One enqueued task and everything its ``TaskResult`` reports.

    ``due_at`` is ``run_after`` when the task was deferred and the enqueue time
    otherwise, so "highest priority first, then the earliest due" is a plain
    ``ORDER BY priority DESC, due_at`` that one index can serve.

    Indexes. The claim query filters on backend, status READY and ``due_at``
    and sorts by priority and ``due_at``; its indexes are created per vendor
    by migration 0002 (see ``sql.CLAIM_INDEXES``): partial indexes over READY
    rows on PostgreSQL and SQLite, so finished rows never slow a claim down,
    and full composite indexes led by ``status`` on MySQL/MariaDB, which have
    no partial indexes and lock every row the claim scans. The index on
    ``(status, finished_at)`` serves the purge; ``enqueued_at`` serves the
    admin's default ordering.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_path = models.CharField(_("task path"), max_length=255)
    queue_name = models.CharField(_("queue name"), max_length=100)
    priority = models.SmallIntegerField(_("priority"), default=0)
    backend_name = models.CharField(_("backend name"), max_length=100)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=TaskResultStatus.choices,
        default=TaskResultStatus.READY,
    )
    args = models.JSONField(_("arguments"), default=list)
    kwargs = models.JSONField(_("keyword arguments"), default=dict)
    run_after = models.DateTimeField(_("run after"), null=True, blank=True)
    due_at = models.DateTimeField(_("due at"))
    enqueued_at = models.DateTimeField(_("enqueued at"), db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    last_attempted_at = models.DateTimeField(
        _("last attempted at"), null=True, blank=True
    )
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Set when a person cancelled the task: no automatic retry path may run
    # it again; only a deliberate retry (which clears it) does.
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    return_value = models.JSONField(_("return value"), null=True, blank=True)
    errors = models.JSONField(_("errors"), default=list)
    worker_ids = models.JSONField(_("worker ids"), default=list)

    class Meta:
        db_table = "django_database_task"
        verbose_name = _("database task")
        verbose_name_plural = _("database tasks")
        indexes = [
            models.Index(fields=["status", "finished_at"], name="ddt_purge_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} ({self.id})"

    @property
    def attempts(self) -> int:
        return len(self.worker_ids)
