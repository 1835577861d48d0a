from django.core.management.base import BaseCommand, CommandError
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS
from django.tasks.exceptions import InvalidTaskBackend
from django.utils import timezone
from django.utils.timesince import timesince

from django_database_task.api import get_backend
from django_database_task.durations import parse_duration
from django_database_task.engine.maintenance.stale import (
    MAX_BATCH_SIZE,
    MAX_OLDER_THAN,
    StaleTask,
    requeue_stale,
)
from django_database_task.validation import option_names


class Command(BaseCommand):
    help = (
        "Requeue RUNNING tasks whose attempt started longer ago than "
        "--older-than, as the automatic rescue of a dead worker's tasks does: "
        "a WorkerLost error, then READY after the retry backoff, or FAILED once "
        "the task has used its attempts. Tasks a worker finishes meanwhile are "
        "left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            required=True,
            help="Requeue tasks whose attempt started longer ago than this: "
            "90s, 15m, 2h, 1d, or plain seconds "
            f"(at most {MAX_OLDER_THAN.days}d).",
        )
        parser.add_argument(
            "--queue",
            action="append",
            default=[],
            help="Queue name (all queues if not specified). Repeat the option "
            "or separate names with commas for several queues.",
        )
        parser.add_argument(
            "--backend",
            default=DEFAULT_TASK_BACKEND_ALIAS,
            help='Backend name (default: "default").',
        )
        decision = parser.add_mutually_exclusive_group()
        decision.add_argument(
            "--max-attempts",
            type=int,
            help="Decide with this many attempts instead of each task's own.",
        )
        decision.add_argument(
            "--mark-failed",
            action="store_true",
            help="Mark the tasks FAILED instead of requeueing them.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=100,
            help=f"Tasks read at once (default: 100, max: {MAX_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List and count the tasks without changing them.",
        )

    def handle(self, *args, **options):
        try:
            older_than = parse_duration(
                options["older_than"], "--older-than", MAX_OLDER_THAN
            )
            queue_names = option_names(options["queue"], "--queue")
            backend = get_backend(options["backend"])
            tasks = requeue_stale(
                backend,
                older_than=older_than,
                queue_names=queue_names,
                max_attempts=options["max_attempts"],
                mark_failed=options["mark_failed"],
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
            )
        except (ValueError, InvalidTaskBackend) as e:
            raise CommandError(str(e)) from None
        verbosity = options["verbosity"]
        dry_run = options["dry_run"]
        if verbosity >= 2 or (dry_run and verbosity >= 1):
            for task in tasks:
                self.stdout.write(_line(task, dry_run))
        if verbosity >= 1:
            self.stdout.write(_summary(tasks, dry_run))


def _line(task: StaleTask, dry_run: bool) -> str:
    if task.failed:
        fate = "would fail" if dry_run else "failed"
    else:
        fate = "would requeue" if dry_run else "requeued"
    if not dry_run and not task.changed:
        fate = "left alone: it finished or moved on meanwhile"
    return (
        f"{task.id} {task.task_path} queue={task.queue_name} "
        f"worker={task.worker_id or '-'} "
        f"started {timesince(task.last_attempted_at, timezone.now())} ago, "
        f"attempts {task.attempts_used}/{task.max_attempts}: {fate}"
    )


def _summary(tasks: list[StaleTask], dry_run: bool) -> str:
    if dry_run:
        failing = sum(task.failed for task in tasks)
        return (
            f"Would requeue {len(tasks) - failing} task(s) and fail {failing} "
            "task(s) (dry run)."
        )
    changed = [task for task in tasks if task.changed]
    failed = sum(task.failed for task in changed)
    summary = f"Requeued {len(changed) - failed} task(s), failed {failed} task(s)."
    if len(changed) < len(tasks):
        summary += (
            f" {len(tasks) - len(changed)} task(s) finished or moved on meanwhile "
            "and were left alone."
        )
    return summary
