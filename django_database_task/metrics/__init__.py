"""Prometheus metrics of the task queue, for the backends that opt in with
``OPTIONS["METRICS"] = True``; they need the ``metrics`` extra
(prometheus-client).

Counters and histograms are fed by receivers of the task signals, which are
connected only when some backend opts in and the extra is installed, so that
nobody else pays for them (``recording``). Gauges of the queue are read from
the database when scraped, and the bundled URLconf serves everything at
``metrics/`` (``exposition``, ``views``).

Without ``PROMETHEUS_MULTIPROC_DIR`` the counters are those of the process
that serves ``metrics/``. With it, every process (web and workers) writes its
counters to files in that directory, and a scrape adds them up: see the
README for the setup.
"""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.signals import setting_changed
from django.dispatch import Signal, receiver
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.signals import task_enqueued, task_finished, task_started

from ..engine.signals import task_rescued

OPTION = "METRICS"
EXTRA_MISSING = (
    "Prometheus metrics need prometheus-client: "
    "pip install 'django-database-task[metrics]'."
)
# What each receiver of ``recording`` listens to.
SIGNALS: dict[str, Signal] = {
    "on_enqueued": task_enqueued,
    "on_started": task_started,
    "on_finished": task_finished,
    "on_rescued": task_rescued,
}


def installed() -> bool:
    """Whether the ``metrics`` extra is installed."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def enabled(backend: BaseTaskBackend) -> bool:
    """Whether the backend opts in to metrics."""
    return backend.options.get(OPTION) is True


def _options(config: object) -> Mapping:
    options = config.get("OPTIONS") if isinstance(config, Mapping) else None
    return options if isinstance(options, Mapping) else {}


def requested() -> bool:
    """Whether some backend in TASKS opts in. Reads the setting only: no
    backend is built while the apps load."""
    return any(
        _options(config).get(OPTION) is True for config in settings.TASKS.values()
    )


def sync_receivers() -> None:
    """Connect the receivers when some backend opts in and the extra is
    installed, else make sure none is connected."""
    for name, signal in SIGNALS.items():
        signal.disconnect(dispatch_uid=f"{__name__}.{name}")
    if not (requested() and installed()):
        return
    from . import recording

    for name, signal in SIGNALS.items():
        signal.connect(getattr(recording, name), dispatch_uid=f"{__name__}.{name}")


@receiver(setting_changed)
def _tasks_changed(*, setting: str, **kwargs: Any) -> None:
    """A new TASKS setting (in tests) may opt in or out."""
    if setting == "TASKS":
        sync_receivers()


def check_metrics(app_configs=None, **kwargs: Any) -> list[checks.CheckMessage]:
    """METRICS must be a boolean, and True needs the extra."""
    messages: list[checks.CheckMessage] = []
    for alias, config in settings.TASKS.items():
        value = _options(config).get(OPTION, False)
        if not isinstance(value, bool):
            messages.append(
                checks.Error(
                    f"TASKS[{alias!r}]['OPTIONS']['{OPTION}'] must be True or "
                    f"False, not {value!r}.",
                    obj=alias,
                    id="django_database_task.E301",
                )
            )
        elif value and not installed():
            messages.append(
                checks.Error(
                    f"Task backend {alias!r} sets {OPTION} = True, but "
                    "prometheus-client is not installed.",
                    hint="pip install 'django-database-task[metrics]'",
                    obj=alias,
                    id="django_database_task.E302",
                )
            )
    return messages
