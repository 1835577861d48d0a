from django.core.management.base import BaseCommand, CommandError
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS
from django.tasks.exceptions import InvalidTaskBackend

from django_database_task.engine.maintenance.cleaner import (
    DEFAULT_PURGE_STATUSES,
    MAX_BATCH_SIZE,
    MAX_DAYS,
    purge_completed_tasks,
)


class Command(BaseCommand):
    help = "Delete completed task records from the database."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=0,
            help="Delete tasks completed more than N days ago "
            f"(0=all, max: {MAX_DAYS}).",
        )
        parser.add_argument(
            "--status",
            default=",".join(DEFAULT_PURGE_STATUSES),
            help='Target statuses, comma-separated (default: "SUCCESSFUL,FAILED").',
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Number of tasks to delete at once "
            f"(default: 1000, max: {MAX_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show count only without deleting.",
        )
        parser.add_argument(
            "--task-path",
            help="Only delete tasks of this task path, e.g. myapp.tasks.send_email.",
        )
        parser.add_argument(
            "--backend",
            default=DEFAULT_TASK_BACKEND_ALIAS,
            help='Backend name (default: "default").',
        )

    def handle(self, *args, **options):
        try:
            count = purge_completed_tasks(
                days=options["days"],
                statuses=options["status"],
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                task_path=options["task_path"],
                backend_name=options["backend"],
            )
        except (ValueError, InvalidTaskBackend) as e:
            raise CommandError(str(e)) from None
        if options["dry_run"]:
            self.stdout.write(f"Would delete {count} task(s) (dry run).")
        else:
            self.stdout.write(f"Deleted {count} task(s).")
