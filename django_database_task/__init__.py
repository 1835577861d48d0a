"""A database-backed task queue backend for Django's task framework."""

__version__ = "0.1.0"

_API = {
    "bulk_enqueue": "api",
    "process_one_task": "api",
    "process_tasks": "api",
    "get_pending_task_count": "api",
    "run_task_by_id": "api",
    "get_queue_stats": "api",
    "purge_completed_tasks": "engine.maintenance.cleaner",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    # Loaded on first use: the API needs models, which must not be imported
    # while Django is still reading INSTALLED_APPS.
    if name in _API:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_API[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
