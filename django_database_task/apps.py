from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DatabaseTaskConfig(AppConfig):
    name = "django_database_task"
    verbose_name = _("Database tasks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.core import checks

        from .checks import check_endpoint_auth
        from .metrics import check_metrics, sync_receivers
        from .sqlite_journal import check_sqlite_journal

        checks.register(check_endpoint_auth, checks.Tags.security, checks.Tags.urls)
        checks.register(check_metrics)
        checks.register(check_sqlite_journal, checks.Tags.database)
        sync_receivers()
