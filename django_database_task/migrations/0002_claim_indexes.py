from django.db import migrations

from django_database_task.sql import dialect_for


def create_claim_indexes(apps, schema_editor):
    for statement in dialect_for(schema_editor.connection).create_indexes:
        schema_editor.execute(statement)


def drop_claim_indexes(apps, schema_editor):
    for statement in dialect_for(schema_editor.connection).drop_indexes:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    """Vendor-specific claim indexes; see DatabaseTask's docstring."""

    dependencies = [("django_database_task", "0001_initial")]

    operations = [
        migrations.RunPython(create_claim_indexes, drop_claim_indexes, atomic=False)
    ]
