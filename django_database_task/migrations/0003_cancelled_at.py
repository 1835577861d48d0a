from django.db import migrations, models
from django.db.models import F, TextField
from django.db.models.functions import Cast

# Before 0003 a cancel left only this error behind.
OLD_CANCELLED_PATH = "django_database_task.admin.actions.TaskCancelled"


def mark_earlier_cancels(apps, schema_editor):
    """Tasks cancelled before the mark existed get it, so that no retry path
    runs them after the upgrade."""
    DatabaseTask = apps.get_model("django_database_task", "DatabaseTask")
    (
        DatabaseTask.objects.using(schema_editor.connection.alias)
        .annotate(errors_text=Cast("errors", TextField()))
        .filter(status="FAILED", errors_text__contains=OLD_CANCELLED_PATH)
        .update(cancelled_at=F("finished_at"))
    )


class Migration(migrations.Migration):
    dependencies = [("django_database_task", "0002_claim_indexes")]

    operations = [
        migrations.AddField(
            model_name="databasetask",
            name="cancelled_at",
            field=models.DateTimeField(
                blank=True, null=True, verbose_name="cancelled at"
            ),
        ),
        migrations.RunPython(mark_earlier_cancels, migrations.RunPython.noop),
    ]
