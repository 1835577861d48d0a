"""What happens after an attempt fails: another attempt later, or FAILED.

One definition of "attempts used" serves retries, the rescue of a dead
worker's tasks and ``allow_retry``: every claim of the task is an attempt
(Django's ``TaskResult.attempts``, the number of worker ids).
"""

import random
from datetime import datetime, timedelta


class WorkerLost(Exception):
    """The worker running the task stopped heartbeating (it crashed, was
    killed, or lost its database for longer than the rescue threshold)."""


def backoff_seconds(attempts_used: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: a random pause of up to
    ``base * 2 ** (attempts_used - 1)`` seconds, never above ``cap``."""
    ceiling = min(cap, base * 2 ** min(attempts_used - 1, 62))
    return random.uniform(0, ceiling)


def next_attempt_at(
    *,
    attempts_used: int,
    max_attempts: int,
    retry_backoff: float,
    retry_backoff_max: float,
    now: datetime,
) -> datetime | None:
    """When the task runs again, or None when it has used its attempts."""
    if attempts_used >= max_attempts:
        return None
    delay = backoff_seconds(attempts_used, retry_backoff, retry_backoff_max)
    return now + timedelta(seconds=delay)
