"""Timestamps as the servers write them (ISO 8601, up to nanoseconds, ``Z``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; UTC when none), or None.

    The real server writes nanoseconds; Python keeps microseconds.
    """
    if not isinstance(value, str) or not value:
        return None
    match = _TIME.match(value.strip())
    if match is None:
        return None
    head, fraction, zone = match.groups()
    text = head.replace(" ", "T", 1)
    if fraction:
        text += "." + fraction[:6].ljust(6, "0")
    if zone and zone.upper() == "Z":
        zone = "+00:00"
    try:
        parsed = datetime.fromisoformat(text + (zone or ""))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds and ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def duration_text(seconds: float) -> str:
    """How long something took, for people: ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
