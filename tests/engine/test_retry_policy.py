"""Backoff: exponential from retry_backoff, full jitter, capped."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from django_database_task.engine.retry_policy import backoff_seconds, next_attempt_at

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempts_used", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (80, 60.0)]
)
def test_pauses_stay_within_the_exponential_ceiling_and_the_cap(attempts_used, ceiling):
    random.seed(attempts_used)
    pauses = [backoff_seconds(attempts_used, 2.0, 60.0) for _ in range(2000)]
    assert all(0 <= pause <= ceiling for pause in pauses)
    # Full jitter: spread over the whole range, not bunched at the top.
    assert min(pauses) < ceiling * 0.05 and max(pauses) > ceiling * 0.95


def test_no_next_attempt_once_the_attempts_are_used():
    options = {"max_attempts": 3, "retry_backoff": 1.0, "retry_backoff_max": 10.0}
    assert next_attempt_at(attempts_used=3, now=NOW, **options) is None
    later = next_attempt_at(attempts_used=2, now=NOW, **options)
    assert NOW <= later <= NOW + timedelta(seconds=2)
