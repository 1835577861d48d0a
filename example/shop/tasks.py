import asyncio

from django.tasks import task


@task
def send_welcome_email(user_id):
    return f"Email sent to user {user_id}"


@task(priority=10)
def charge_card(order_id):
    return {"order": order_id, "charged": True}


@task(priority=-10)
def rebuild_search_index():
    return "index rebuilt"


@task
def import_feed(url):
    raise ConnectionError(f"{url} did not answer")


@task
async def fetch_exchange_rate(currency):
    await asyncio.sleep(0.1)
    return {"currency": currency, "rate": 1.08}


@task(takes_context=True)
def send_reminder(context, message):
    return f"Task {context.task_result.id} (attempt {context.attempt}): {message}"
