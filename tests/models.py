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
