"""Durations as operators type and read them: 90s, 15m, 2h, 1d.

Shared by the commands (and anything else taking a duration from a person),
so that every option accepts and prints the same spellings.
"""

import re
from datetime import timedelta

UNITS = {"d": 86_400, "h": 3600, "m": 60, "s": 1}
# Twelve digits are plenty for any bounded duration, and keep int() cheap.
DURATION = re.compile(r"(\d{1,12})([smhd]?)", re.ASCII)


def parse_duration(text: str, option: str, maximum: timedelta) -> timedelta:
    """A duration such as 90s, 15m, 2h or 1d (plain digits are seconds),
    above 0 and at most ``maximum``; a ValueError naming ``option`` if not."""
    match = DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"{option} must be a duration such as 90s, 15m, 2h or 1d, not {text!r}."
        )
    seconds = int(match[1]) * UNITS[match[2] or "s"]
    if not 0 < seconds <= maximum.total_seconds():
        raise ValueError(
            f"{option} must be above 0 and at most {format_duration(maximum)}, "
            f"not {text!r}."
        )
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """``delta`` in whole seconds, its two largest non-zero parts: 12m 3s,
    2h, 1d 4h; 0s under a second (or below zero, as clock skew gives)."""
    remaining = max(int(delta.total_seconds()), 0)
    parts = []
    for unit, seconds in UNITS.items():
        count, remaining = divmod(remaining, seconds)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2]) or "0s"
