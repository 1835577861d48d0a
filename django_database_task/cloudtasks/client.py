"""The Cloud Task of each database task, created and deleted with the
google-cloud-tasks client."""

from dataclasses import dataclass
from datetime import datetime

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.api_core.client_options import ClientOptions
from google.cloud import tasks_v2
from google.protobuf import timestamp_pb2

TRANSPORTS = ("rest", "grpc")


@dataclass(frozen=True)
class Target:
    """Where the tasks go: the Cloud Tasks location and our execute URL."""

    project: str
    location: str
    handler_url: str  # contains "{task_id}"
    service_account_email: str | None
    audience: str | None


def make_client(
    *, transport: str, api_endpoint: str | None
) -> tasks_v2.CloudTasksClient:
    """A client using Application Default Credentials (on Google Cloud, the
    metadata server's service account)."""
    options = ClientOptions(api_endpoint=api_endpoint) if api_endpoint else None
    return tasks_v2.CloudTasksClient(transport=transport, client_options=options)


def task_name(
    client: tasks_v2.CloudTasksClient, target: Target, *, queue_name: str, task_id: str
) -> str:
    """The Cloud Task of a database task is named after its id, so that it
    can be deduplicated on create and found again to delete."""
    return client.task_path(target.project, target.location, queue_name, task_id)


def build_task(
    client: tasks_v2.CloudTasksClient,
    target: Target,
    *,
    task_id: str,
    queue_name: str,
    run_after: datetime | None,
) -> tuple[str, tasks_v2.Task]:
    """The queue path and the Cloud Task for one database task.

    The task is named after the database task so that Cloud Tasks refuses a
    second create of it, and carries nothing but the id in its URL: the
    arguments stay in the database.
    """
    request = tasks_v2.HttpRequest(
        url=target.handler_url.format(task_id=task_id),
        http_method=tasks_v2.HttpMethod.POST,
    )
    if target.service_account_email:
        request.oidc_token = tasks_v2.OidcToken(
            service_account_email=target.service_account_email,
            audience=target.audience or "",
        )
    parent = client.queue_path(target.project, target.location, queue_name)
    task = tasks_v2.Task(
        name=task_name(client, target, queue_name=queue_name, task_id=task_id),
        http_request=request,
    )
    if run_after is not None:
        schedule = timestamp_pb2.Timestamp()
        schedule.FromDatetime(run_after)
        task.schedule_time = schedule
    return parent, task


def is_duplicate(error: Exception) -> bool:
    """Cloud Tasks already has (or recently had) a task of that name: gRPC says
    ALREADY_EXISTS, REST says 409, both raised as Conflict."""
    return isinstance(error, api_exceptions.Conflict)


def _retry(timeout: float) -> api_retry.Retry:
    return api_retry.Retry(
        predicate=api_retry.if_transient_error,
        initial=0.1,
        maximum=1.0,
        timeout=timeout,
    )


def create_task(
    client: tasks_v2.CloudTasksClient,
    parent: str,
    task: tasks_v2.Task,
    *,
    timeout: float,
) -> None:
    """Create the task, retrying transient errors within ``timeout`` seconds in
    all (safe: a repeated create of a named task is refused, not doubled)."""
    client.create_task(parent=parent, task=task, retry=_retry(timeout), timeout=timeout)


def delete_task(
    client: tasks_v2.CloudTasksClient, name: str, *, timeout: float
) -> bool:
    """Delete the task, retrying like ``create_task``; False when Cloud Tasks
    does not have it (already run, deleted, or never created): done too."""
    try:
        client.delete_task(name=name, retry=_retry(timeout), timeout=timeout)
    except api_exceptions.NotFound:
        return False
    return True
