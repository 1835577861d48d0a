"""The tasks of the specification's Quick Start and Usage sections, as written
there (fetch_data awaits a coroutine instead of an HTTP client: no network)."""

import asyncio
from datetime import datetime

from django.contrib.auth.models import User
from django.tasks import task


@task
def send_welcome_email(user_id):
    user = User.objects.get(id=user_id)
    # Send email...
    return f"Email sent to {user.email}"


@task
def bad_task(user_id, created_at):
    pass


@task
def good_task(user_id, created_at_iso):
    created_at = datetime.fromisoformat(created_at_iso)
    return created_at.year


@task(priority=10)  # Higher priority, runs first
def urgent_task():
    pass


@task(priority=-10)  # Lower priority
def background_task():
    pass


@task
def my_task():
    return "ran"


@task(takes_context=True)
def task_with_context(context, message):
    task_id = context.task_result.id
    attempt = context.attempt
    return f"Task {task_id} (attempt {attempt}): {message}"


@task
async def fetch_data(url):
    await asyncio.sleep(0)
    return f"<html>{url}</html>"


@task(queue_name="emails")
def send_newsletter():
    pass
