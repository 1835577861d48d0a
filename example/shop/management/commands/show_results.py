from django.core.management.base import BaseCommand

from django_database_task import get_queue_stats
from django_database_task.models import DatabaseTask


class Command(BaseCommand):
    help = "Print every task's result, then the queue statistics."

    def handle(self, *args, **options):
        for row in DatabaseTask.objects.order_by("finished_at"):
            result = self._describe(row)
            self.stdout.write(f"{row.status:<10} {row.task_path:<32} {result}")
        self.stdout.write(f"Queue: {get_queue_stats()}")

    def _describe(self, row):
        if row.status == "FAILED":
            return row.errors[-1]["traceback"].strip().splitlines()[-1]
        return repr(row.return_value)
