"""Tasks with retry options set by ``@task(...)``: Django 6.1 passes them to
the backend's ``task_class``. Imported only on Django 6.1 and later."""

from django.tasks import task

from .tasks import fail_then_succeed


@task(max_attempts=3, retry_on=(ConnectionError,), retry_backoff=0.001)
def flaky_connection(key, failures):
    return fail_then_succeed(key, failures, ConnectionError)


@task(max_attempts=5, retry_on=(ConnectionError,))
def wrong_error():
    raise ValueError("not a connection problem")
