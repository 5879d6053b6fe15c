"""Times are stored and printed as ISO 8601 in UTC with a ``Z`` (SPEC 2)."""

from __future__ import annotations

import datetime as dt
import re
import time

UTC = dt.UTC


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def iso(value: dt.datetime | None) -> str | None:
    """Format an aware or naive (taken as UTC) datetime as ``YYYY-MM-DDTHH:MM:SSZ``."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_last_iso: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The current time as ISO text; formatted once per second (an import calls this a lot)."""
    global _last_iso
    seconds = int(time.time())
    if _last_iso[0] != seconds:
        _last_iso = (seconds, iso(dt.datetime.fromtimestamp(seconds, UTC)))  # type: ignore[assignment]
    return _last_iso[1]


def parse_iso(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def parse_date(value: str) -> dt.date:
    """Parse ``YYYY-MM-DD``; raise ValueError otherwise."""
    return dt.datetime.strptime(value, "%Y-%m-%d").date()


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int) -> int:
    """``"2h"``, ``"90m"``, ``"7200"`` or ``7200`` -> seconds; ValueError otherwise."""
    if isinstance(value, int):
        return value
    match = _DURATION.match(str(value).lower())
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 2h, 90m, 3600s)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
