from django.db import models


class Execution(models.Model):
    """One row per task execution, unique per key, so a task that runs twice
    is caught by the database."""

    key = models.CharField(max_length=100, unique=True)
    duplicates = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.key


class Counter(models.Model):
    """How many times something happened, per key: lets a task fail its first
    attempts and succeed later."""

    key = models.CharField(max_length=100, unique=True)
    value = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Span(models.Model):
    """When one run of a task began and ended: overlapping spans prove tasks
    ran at the same time, without timing the test itself."""

    key = models.CharField(max_length=100, unique=True)
    started = models.FloatField()
    ended = models.FloatField()

    def __str__(self) -> str:
        return self.key


def peak_overlap(spans) -> int:
    """The most spans running at one instant."""
    events = sorted(
        [(span.started, 1) for span in spans] + [(span.ended, -1) for span in spans]
    )
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak
