from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from shop import tasks


class Command(BaseCommand):
    help = "Enqueue a handful of example tasks."

    def handle(self, *args, **options):
        results = [
            tasks.rebuild_search_index.enqueue(),
            tasks.send_welcome_email.enqueue(user_id=123),
            tasks.charge_card.enqueue(42),
            tasks.import_feed.enqueue("https://feeds.example.com/prices"),
            tasks.fetch_exchange_rate.enqueue("EUR"),
            tasks.send_reminder.using(
                run_after=timezone.now() + timedelta(seconds=2)
            ).enqueue("Your cart is waiting"),
        ]
        for result in results:
            delayed = " (delayed 2 s)" if result.task.run_after else ""
            self.stdout.write(
                f"Enqueued {result.task.name} priority={result.task.priority}"
                f"{delayed}: {result.id}"
            )
