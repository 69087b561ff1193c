"""Date-times from outside (readings, query filters): the one check that the database can hold
them.

Python accepts UTC offsets up to ±23:59 and years 1-9999 in any offset; PostgreSQL refuses an
offset beyond ±15:59 ("time zone displacement out of range"), and a year-1 date-time east of
UTC is year 0 in UTC (stored as 1 BC, and unreadable to Python afterwards). Both are refused at
the door, so a statement never fails on them and nothing unreadable is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)

# An unencoded "+" in a query string arrives as a space: "...T10:00:00 05:30" means "+05:30".
_SPACED_OFFSET = re.compile(r"^(.+T\S+) (\d{2}(?::?\d{2})?)$")


def datetime_problem(value: datetime) -> str | None:
    """Why the database cannot hold this aware date-time, or None when it can."""
    offset = value.utcoffset()
    if offset is None:
        return "The date-time must carry a UTC offset, e.g. 2026-01-01T10:00:00Z."
    if abs(offset) > MAX_UTC_OFFSET:
        return "The UTC offset must be between -15:59 and +15:59."
    if 1 < value.year < 9999:
        return None  # an offset under a day moves only the first or the last year out of range
    try:
        value.astimezone(UTC)
    except OverflowError:
        return "The date-time is outside the years 1-9999 in UTC."
    return None


def iso_parse_storable(text: str) -> datetime:
    """Parse ISO-8601 text into a date-time with a UTC offset that the database can hold;
    ValueError with a message for people otherwise (``datetime_problem``)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("Not an ISO-8601 date-time.") from None
    problem = datetime_problem(parsed)
    if problem is not None:
        raise ValueError(problem)
    return parsed


def parse_aware_datetime(value: Any) -> datetime:
    """Parse ISO-8601 with a UTC offset (``Z`` allowed) that the database can hold, as query
    filters receive it (surrounding spaces, a "+" that arrived as a space); naive values and
    offsets or years it cannot hold raise ValueError (with a message for people)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("An ISO-8601 date-time with a UTC offset is required.")
    return iso_parse_storable(_SPACED_OFFSET.sub(r"\1+\2", value.strip()))


def iso(value: date | None) -> str | None:
    """A date or date-time as the API writes it: ISO 8601, a date-time with its UTC offset
    (None stays None)."""
    return value.isoformat() if value is not None else None


def iso_utc(epoch: float) -> str:
    """Seconds since the epoch as the CTG endpoints write them: ISO 8601 in UTC with ``Z``."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")
