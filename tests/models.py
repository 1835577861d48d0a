from django.db import models


class Execution(models.Model):
    """One row per task execution, unique per key, so a task that runs twice
    is caught by the database."""

    key = models.CharField(max_length=100, unique=True)
    duplicates = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.key
