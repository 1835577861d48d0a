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

        checks.register(check_endpoint_auth, checks.Tags.security, checks.Tags.urls)
        checks.register(check_metrics)
        sync_receivers()
