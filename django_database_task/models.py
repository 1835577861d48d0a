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
    # The worker holding the task while it is RUNNING: when that worker stops
    # heartbeating, any live worker rescues the task.
    worker_id = models.CharField(_("worker id"), max_length=255, blank=True, default="")
    # Retry options, resolved when the task was enqueued, so that the
    # rescuer can decide without importing the task's module.
    max_attempts = models.PositiveIntegerField(_("max attempts"), default=1)
    retry_backoff = models.FloatField(_("retry backoff"), default=1.0)
    retry_backoff_max = models.FloatField(_("retry backoff max"), default=3600.0)

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


class WorkerState(models.TextChoices):
    RUNNING = "RUNNING", _("Running")
    STOPPING = "STOPPING", _("Stopping")


class DatabaseTaskWorker(models.Model):
    """A live worker, known by its heartbeat. A row whose heartbeat is older
    than the rescue threshold is a dead worker: its tasks are rescued and the
    row pruned."""

    id = models.CharField(_("worker id"), max_length=255, primary_key=True)
    backend_name = models.CharField(_("backend name"), max_length=100)
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process id"))
    queues = models.JSONField(_("queues"), default=list)
    concurrency = models.PositiveIntegerField(_("concurrency"), default=1)
    state = models.CharField(
        _("state"),
        max_length=10,
        choices=WorkerState.choices,
        default=WorkerState.RUNNING,
    )
    started_at = models.DateTimeField(_("started at"))
    last_heartbeat_at = models.DateTimeField(_("last heartbeat at"), db_index=True)
    # The tasks the worker may have started and not yet stored, written
    # before it starts them: a task it holds that is not listed was claimed
    # ahead and never started, so rescuing it costs no attempt. NULL when the
    # worker keeps no list (a one-off run by id, or an older version): each
    # task it holds then counts as attempted.
    started_task_ids = models.JSONField(
        _("started task ids"), null=True, blank=True, default=None
    )

    class Meta:
        db_table = "django_database_task_worker"
        verbose_name = _("task worker")
        verbose_name_plural = _("task workers")

    def __str__(self) -> str:
        return self.id
