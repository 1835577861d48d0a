"""The Cloud Tasks backend: the database keeps the task, Cloud Tasks wakes us up."""

import logging
import threading
from datetime import datetime
from functools import partial
from urllib.parse import parse_qs, urlencode, urlsplit

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResult
from google.api_core.exceptions import GoogleAPIError

from ..backends import DatabaseTaskBackend
from ..models import DatabaseTask
from . import client as cloud
from .detection import detect_gcp_location, detect_gcp_project, detect_task_handler_host
from .oidc import GOOGLE_CERTS_URL

logger = logging.getLogger("django_database_task.cloudtasks")

DEFAULT_HANDLER_PATH = "/tasks/execute/{task_id}/"
DEFAULT_TIMEOUT = 5.0


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class CloudTasksDatabaseBackend(DatabaseTaskBackend):
    """Stores tasks like DatabaseTaskBackend and, once the enqueueing
    transaction commits, creates a Cloud Task that POSTs the task id to
    ``execute/``; cancelling the task deletes that Cloud Task again. The
    database stays the source of truth: if Cloud Tasks is unreachable the
    task waits READY for a worker, nothing is lost.
    """

    def __init__(self, alias, params):
        super().__init__(alias, params)
        options = self.options
        self.transport = options.get("CLOUD_TASKS_TRANSPORT", "rest")
        if self.transport not in cloud.TRANSPORTS:
            raise ImproperlyConfigured(
                f"Task backend {alias!r}: CLOUD_TASKS_TRANSPORT must be one of "
                f"{', '.join(cloud.TRANSPORTS)}, not {self.transport!r}."
            )
        self.timeout = options.get("CLOUD_TASKS_TIMEOUT", DEFAULT_TIMEOUT)
        if (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or self.timeout <= 0
        ):
            raise ImproperlyConfigured(
                f"Task backend {alias!r}: CLOUD_TASKS_TIMEOUT must be a positive "
                f"number of seconds, not {self.timeout!r}."
            )
        for name in ("TASK_HANDLER_URL", "TASK_HANDLER_PATH"):
            value = options.get(name)
            if value is not None and "{task_id}" not in value:
                raise ImproperlyConfigured(
                    f"Task backend {alias!r}: {name} must contain '{{task_id}}', "
                    f"where the task id goes; got {value!r}."
                )
        self.api_endpoint = options.get("CLOUD_TASKS_API_ENDPOINT")
        self.retry_failed_tasks = bool(options.get("RETRY_FAILED_TASKS", False))
        self.service_account_email = options.get("OIDC_SERVICE_ACCOUNT_EMAIL")
        self.certs_url = options.get("OIDC_CERTS_URL", GOOGLE_CERTS_URL)
        self._lock = threading.Lock()
        self._client = None
        self._target = None
        self._handler_url = None

    # Configuration, resolved on first use: detection may ask the metadata server.

    def handler_url(self) -> str | None:
        """The execute URL with ``{task_id}`` still in it, or None if neither
        configured nor detectable."""
        if self._handler_url is not None:
            return self._handler_url
        url = self.options.get("TASK_HANDLER_URL")
        if not url:
            origin = detect_task_handler_host()
            if not origin:
                return None
            path = self.options.get("TASK_HANDLER_PATH", DEFAULT_HANDLER_PATH)
            url = f"{origin}{path}"
        wanted = {"fail_on_error": "true"}
        if self.retry_failed_tasks:
            wanted["allow_retry"] = "true"
        if self.alias != DEFAULT_TASK_BACKEND_ALIAS:
            wanted["backend_name"] = self.alias
        present = parse_qs(urlsplit(url).query, keep_blank_values=True)
        extra = {key: value for key, value in wanted.items() if key not in present}
        if extra:
            url += ("&" if "?" in url else "?") + urlencode(extra)
        self._handler_url = url
        return url

    def audience(self) -> str | None:
        """OIDC_AUDIENCE, else the origin of the execute URL."""
        if self.options.get("OIDC_AUDIENCE"):
            return self.options["OIDC_AUDIENCE"]
        url = self.handler_url()
        return _origin(url) if url else None

    def target(self) -> cloud.Target:
        """Project, location and execute URL; ImproperlyConfigured naming the
        options to set when they cannot be detected."""
        if self._target is not None:
            return self._target
        project = self.options.get("CLOUD_TASKS_PROJECT") or detect_gcp_project()
        location = self.options.get("CLOUD_TASKS_LOCATION") or detect_gcp_location()
        url = self.handler_url()
        if not (project and location and url):
            missing = [
                name
                for name, value in (
                    ("CLOUD_TASKS_PROJECT", project),
                    ("CLOUD_TASKS_LOCATION", location),
                    ("TASK_HANDLER_URL", url),
                )
                if not value
            ]
            raise ImproperlyConfigured(
                f"Task backend {self.alias!r} could not detect "
                f"{', '.join(missing)} (not on App Engine or Cloud Run?); set "
                "them in OPTIONS."
            )
        self._target = cloud.Target(
            project=project,
            location=location,
            handler_url=url,
            service_account_email=self.service_account_email,
            audience=self.audience() if self.service_account_email else None,
        )
        return self._target

    def client(self):
        with self._lock:
            if self._client is None:
                self._client = cloud.make_client(
                    transport=self.transport, api_endpoint=self.api_endpoint
                )
            return self._client

    # Enqueueing.

    def enqueue(self, task, args, kwargs) -> TaskResult:
        result = super().enqueue(task, args, kwargs)
        transaction.on_commit(
            partial(self.create_cloud_task, result.id, task.queue_name, task.run_after),
            using=self.database,
        )
        return result

    def bulk_enqueue(self, task, calls, **options) -> list[TaskResult]:
        results = super().bulk_enqueue(task, calls, **options)
        for result in results:
            transaction.on_commit(
                partial(
                    self.create_cloud_task, result.id, task.queue_name, task.run_after
                ),
                using=self.database,
            )
        return results

    def create_cloud_task(
        self, task_id: str, queue_name: str, run_after: datetime | None = None
    ) -> bool:
        """Ask Cloud Tasks to call ``execute/`` for this task; True if it has
        the task (now or already). Never raises: on failure the task stays
        READY in the database for ``run_database_tasks`` or ``POST run/``."""
        try:
            client = self.client()
            parent, cloud_task = cloud.build_task(
                client,
                self.target(),
                task_id=str(task_id),
                queue_name=queue_name,
                run_after=run_after,
            )
            cloud.create_task(client, parent, cloud_task, timeout=self.timeout)
        except Exception as error:
            if cloud.is_duplicate(error):
                logger.info("Cloud Task for task %s already exists.", task_id)
                return True
            logger.warning(
                "Could not create the Cloud Task for task %s (%s: %s); it stays "
                "READY in the database for a worker or POST run/.",
                task_id,
                type(error).__name__,
                error,
                # Configuration and API refusals say it all; anything else
                # gets its traceback.
                exc_info=not isinstance(error, ImproperlyConfigured | GoogleAPIError),
            )
            return False
        logger.debug("Created Cloud Task %s.", cloud_task.name)
        return True

    # Cancelling.

    def on_tasks_cancelled(self, task_ids: list[str]) -> None:
        """Withdraw the Cloud Tasks of cancelled tasks once the cancel commits
        (a rollback keeps them, as it keeps the tasks READY)."""
        if task_ids:
            transaction.on_commit(
                partial(self.delete_cloud_tasks, list(task_ids)), using=self.database
            )

    def delete_cloud_tasks(self, task_ids: list[str]) -> None:
        """Delete the Cloud Task of each task. Never raises, and stops at the
        first failure rather than wait on Cloud Tasks once per task: a Cloud
        Task left behind is harmless, execute/ refuses a cancelled task."""
        rows = DatabaseTask.objects.using(self.database).filter(pk__in=task_ids)
        left = len(task_ids)
        try:
            client, target = self.client(), self.target()
            names = [
                cloud.task_name(client, target, queue_name=queue, task_id=str(pk))
                for pk, queue in rows.values_list("pk", "queue_name")
            ]
            left = len(names)
            for name in names:
                if not cloud.delete_task(client, name, timeout=self.timeout):
                    logger.debug("Cloud Task %s was already gone.", name)
                left -= 1
        except Exception as error:
            logger.warning(
                "Could not delete the Cloud Tasks of %d cancelled task(s) "
                "(%s: %s); execute/ will refuse them when they fire.",
                left,
                type(error).__name__,
                error,
                exc_info=not isinstance(error, ImproperlyConfigured | GoogleAPIError),
            )

    def builtin_auth_handlers(self) -> list[dict]:
        """With OIDC configured, execute/ and purge/ accept Cloud Tasks' (and
        Cloud Scheduler's) tokens for our service account."""
        if not self.service_account_email:
            return []
        return [
            {
                "HANDLER": "django_database_task.cloudtasks.auth.CloudTasksOIDCAuth",
                "ENDPOINTS": ["execute", "purge"],
            }
        ]

    def check(self, **kwargs):
        yield from super().check(**kwargs)
        try:
            self.target()
        except ImproperlyConfigured as error:
            yield checks.Warning(
                str(error),
                hint="Until then tasks are only run by run_database_tasks or "
                "POST run/.",
                obj=self.alias,
                id="django_database_task.W201",
            )
