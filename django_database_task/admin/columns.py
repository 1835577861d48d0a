"""How task fields are shown: status badges, durations, JSON and errors.

Everything goes through ``format_html``/``escape``: task data is user data.
"""

import json
from datetime import timedelta

from django.tasks import TaskResultStatus
from django.utils.formats import date_format, localize
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

# A symbol per status, so that a badge reads the same without its colour.
STATUS_SYMBOLS = {
    TaskResultStatus.READY: "○",
    TaskResultStatus.RUNNING: "▶",
    TaskResultStatus.SUCCESSFUL: "✓",
    TaskResultStatus.FAILED: "✕",
}

EMPTY = "—"


def status_badge(status: str) -> SafeString:
    try:
        known = TaskResultStatus(status)
    except ValueError:
        return format_html('<span class="ddt-badge">{}</span>', status)
    return format_html(
        '<span class="ddt-badge ddt-status-{}"><span aria-hidden="true">{}</span> {}'
        "</span>",
        known.value.lower(),
        STATUS_SYMBOLS[known],
        known.label,
    )


def short_datetime(value) -> str:
    """Local time in the locale's short format: list columns stay narrow."""
    if value is None:
        return EMPTY
    return date_format(localtime(value), "SHORT_DATETIME_FORMAT")


def format_duration(duration: timedelta | None) -> str:
    """``1.234 s``, ``2 min 5 s``, ``3 h 2 min``: short enough for a column."""
    if duration is None:
        return EMPTY
    seconds = duration.total_seconds()
    if seconds < 60:
        return _("%(seconds)s s") % {"seconds": localize(round(seconds, 3))}
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return _("%(minutes)d min %(seconds)d s") % {
            "minutes": minutes,
            "seconds": seconds,
        }
    hours, minutes = divmod(minutes, 60)
    return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}


def pretty_json(value) -> SafeString:
    return format_html(
        '<pre class="ddt-json">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )


def _error_parts(error) -> tuple[str, str]:
    if isinstance(error, dict):
        return error.get("exception_class_path", EMPTY), error.get("traceback", "")
    return EMPTY, json.dumps(error, ensure_ascii=False)


def error_list(errors: list) -> SafeString | str:
    """Each stored error: its exception class and full traceback."""
    if not errors:
        return EMPTY
    return format_html_join(
        "",
        '<div class="ddt-error"><p><strong>{}</strong> {}</p>'
        '<pre class="ddt-traceback">{}</pre></div>',
        (
            (
                _("Error %(number)d of %(total)d:")
                % {"number": number, "total": len(errors)},
                *_error_parts(error),
            )
            for number, error in enumerate(errors, start=1)
        ),
    )


def _when(value) -> str:
    return localize(localtime(value)) if value else EMPTY


def attempt_history(task) -> SafeString | str:
    """One row per attempt (a worker id each). The table keeps when the first
    attempt started and when the last one began and finished."""
    worker_ids = task.worker_ids or []
    if not worker_ids:
        return _("Never attempted.")
    last = len(worker_ids)
    rows = []
    for number, worker_id in enumerate(worker_ids, start=1):
        notes = []
        if number == 1:
            notes.append(_("started at %(when)s") % {"when": _when(task.started_at)})
        if number == last:
            notes.append(
                _("last attempted at %(when)s")
                % {"when": _when(task.last_attempted_at)}
            )
            if task.finished_at:
                notes.append(
                    _("finished at %(when)s") % {"when": _when(task.finished_at)}
                )
        rows.append((number, worker_id, "; ".join(notes)))
    return format_html(
        '<table class="ddt-attempts"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
        "</tr></thead><tbody>{}</tbody></table>",
        _("Attempt"),
        _("Worker"),
        _("Times"),
        format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
    )
