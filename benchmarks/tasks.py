from django.tasks import task


@task
def noop(number):
    return number


@task
def io_wait(number):
    """Stands for a task that waits 50 ms on the network."""
    import time

    time.sleep(0.05)
    return number


@task
async def async_io_wait(number):
    import asyncio

    await asyncio.sleep(0.05)
    return number
