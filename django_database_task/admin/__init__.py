"""Django admin integration: task list and detail, actions and a dashboard."""

from django.contrib import admin

from ..models import DatabaseTask
from .task_admin import DatabaseTaskAdmin

admin.site.register(DatabaseTask, DatabaseTaskAdmin)

__all__ = ["DatabaseTaskAdmin"]
