"""Search parameters: FHIR's syntax for dates, tokens, references, ``_count`` and the page
cursor, parsed into plain values (or a 400 OperationOutcome)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import QueryDict
from django.utils import timezone

from common.errors import NotFound
from common.ids import INT64_MAX
from fhir_api.errors import InvalidSearch, NotSupported

# Parameters every interaction accepts (and that do not filter).
COMMON_PARAMETERS = frozenset({"_format", "_pretty"})
PAGING_PARAMETERS = frozenset({"_count", "_cursor"})


def parameters_check(query: QueryDict, allowed: Iterable[str]) -> None:
    """400 for a parameter the endpoint does not know (FHIR's strict handling): silently
    ignoring a misspelt filter would answer more than the client asked for."""
    known = COMMON_PARAMETERS | PAGING_PARAMETERS | set(allowed)
    unknown = sorted(set(query) - known)
    if unknown:
        raise InvalidSearch(
            f"Unknown search parameter(s): {', '.join(unknown)}. "
            f"Supported: {', '.join(sorted(set(allowed) | PAGING_PARAMETERS))}."
        )
    for name, values in query.lists():
        if name.startswith("_") and name not in ("_format",) and len(values) > 1:
            raise InvalidSearch(f"{name} may be given once.")


def values_of(query: QueryDict, name: str) -> list[list[str]]:
    """Each occurrence of ``name`` (ANDed) split on unescaped commas (ORed)."""
    return [
        [part.replace("\\,", ",") for part in re.split(r"(?<!\\),", raw)]
        for raw in query.getlist(name)
    ]


# --- _count ----------------------------------------------------------------------------------


def count_parse(query: QueryDict) -> int:
    """``_count`` (default ``FHIR_DEFAULT_COUNT``); above ``FHIR_MAX_COUNT`` a page holds the
    maximum, as FHIR lets a server do."""
    raw = query.get("_count")
    if raw is None:
        return int(settings.FHIR_DEFAULT_COUNT)
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidSearch(f"_count must be a positive integer, not {raw!r}.")
    return min(int(raw), int(settings.FHIR_MAX_COUNT))


# --- Tokens and references -------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system; "": no system
    code: str


def token_parse(raw: str, name: str) -> Token:
    if "|" in raw:
        system, code = raw.split("|", 1)
    else:
        system, code = None, raw
    if not code:
        raise InvalidSearch(f"{name}: a token needs a code ([system|]code), not {raw!r}.")
    return Token(system, code)


def id_parse(raw: str) -> int | None:
    """An id of ours, or None for any other FHIR id."""
    return int(raw) if raw.isdigit() and int(raw) <= INT64_MAX else None


def reference_id_parse(raw: str, name: str, resource_type: str) -> int:
    """``<id>``, ``<Type>/<id>`` or an absolute URL ending so: the id, or 400."""
    tail = raw.rstrip("/").rsplit("/", 2)
    if len(tail) >= 2:
        if tail[-2] != resource_type:
            raise InvalidSearch(f"{name} must reference a {resource_type}, not {raw!r}.")
        raw = tail[-1]
    if not raw.isdigit():
        raise InvalidSearch(f"{name} must be a {resource_type} id, not {raw!r}.")
    if int(raw) > INT64_MAX:
        raise NotFound(f"{resource_type}/{raw} is not known.")
    return int(raw)


# --- Dates -----------------------------------------------------------------------------------

_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


@dataclass(frozen=True)
class DateBound:
    """One ``date`` value: a comparison with the half-open range ``[low, high)`` the value's
    precision covers (``2026-12-01`` is that whole day)."""

    prefix: str
    low: datetime
    high: datetime


def _add_months(value: datetime, months: int) -> datetime:
    month = value.month - 1 + months
    return value.replace(year=value.year + month // 12, month=month % 12 + 1)


def _date_range(raw: str, name: str) -> tuple[datetime, datetime]:
    match = _DATE.match(raw)
    if match is None:
        raise InvalidSearch(
            f"{name}: {raw!r} is not a FHIR date (YYYY[-MM[-DD[Thh:mm[:ss]+zz:zz]]])."
        )
    parts = match.groupdict()
    try:
        if parts["hour"] is None:
            # A date without a time: the day (month, year) in the server's time zone.
            zone = ZoneInfo(settings.TIME_ZONE)
            start = datetime.combine(
                date(int(parts["year"]), int(parts["month"] or 1), int(parts["day"] or 1)),
                time(),
                tzinfo=zone,
            )
            if parts["day"]:
                end = start + timedelta(days=1)
            elif parts["month"]:
                end = _add_months(start, 1)
            else:
                end = start.replace(year=start.year + 1)
            return start, end
        if parts["offset"] is None:
            raise InvalidSearch(f"{name}: a time needs a time zone (Z or +hh:mm), as in {raw}Z.")
        offset = parts["offset"]
        tz = UTC if offset == "Z" else datetime.strptime(offset, "%z").tzinfo
        fraction = parts["fraction"] or ""
        start = datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"]),
            int(parts["minute"]),
            int(parts["second"] or 0),
            int(fraction[:6].ljust(6, "0")),
            tzinfo=tz,
        )
        if fraction:
            step = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
        elif parts["second"] is not None:
            step = timedelta(seconds=1)
        else:
            step = timedelta(minutes=1)
        return start, start + step
    except (ValueError, OverflowError) as exc:
        raise InvalidSearch(f"{name}: {raw!r} is not a valid date ({exc}).") from None


def date_parse(raw: str, name: str) -> DateBound:
    prefix = raw[:2] if raw[:2] in _PREFIXES else "eq"
    value = raw[2:] if raw[:2] in _PREFIXES else raw
    if raw[:2] == "ap":
        raise NotSupported(f"{name}: the prefix ap (approximately) is not supported.")
    low, high = _date_range(value, name)
    return DateBound(prefix, low, high)


# --- The page cursor -------------------------------------------------------------------------


def cursor_encode(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(query: QueryDict, shape: tuple[type, ...]) -> list[Any] | None:
    """The position ``_cursor`` carries: a list of values of the types in ``shape``."""
    raw = query.get("_cursor")
    if raw is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != len(shape)
        or not all(isinstance(v, t) for v, t in zip(values, shape, strict=True))
        or any(isinstance(v, int) and not 0 <= v <= INT64_MAX for v in values)
    ):
        raise InvalidSearch("_cursor is not a cursor from a next link of this server.")
    return values


def cursor_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidSearch("_cursor is not a cursor from a next link of this server.") from None
    if timezone.is_naive(moment):
        raise InvalidSearch("_cursor is not a cursor from a next link of this server.")
    return moment
