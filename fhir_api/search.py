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
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone

from common.errors import NotFound
from common.ids import INT64_MAX
from fhir_api.errors import InvalidSearch, NotSupported

# Parameters every interaction accepts (and that do not filter).
COMMON_PARAMETERS = frozenset({"_format", "_pretty"})
PAGING_PARAMETERS = frozenset({"_count", "_cursor"})
# What every search takes about its result: ``_summary=count`` (the total alone), ``_total``
# (none | estimate | accurate) and ``_totalMethod`` (sent by some clients, e.g. fhirpy's
# count(); the total given is always exact, so its value changes nothing).
RESULT_PARAMETERS = frozenset({"_summary", "_total", "_totalMethod"})
# Parameters that may be repeated (ANDed); the other "_" ones are given once.
REPEATABLE = frozenset({"_format", "_include", "_lastUpdated"})


def handling_lenient(prefer: str | None) -> bool:
    """Whether the ``Prefer`` header asks for ``handling=lenient`` (default: strict)."""
    for part in (prefer or "").split(","):
        for token in part.split(";"):
            name, _, value = token.strip().partition("=")
            if name.strip().lower() == "handling":
                return value.strip().strip('"').lower() == "lenient"
    return False


def parameters_check(
    query: QueryDict, allowed: Iterable[str], *, lenient: bool = False
) -> QueryDict:
    """The query to search with. A parameter the endpoint does not know is a 400 (FHIR's
    strict handling, the default: silently ignoring a misspelt filter would answer more than
    the client asked for); with ``Prefer: handling=lenient`` it is left out instead, and the
    Bundle's self link shows the parameters used."""
    known = COMMON_PARAMETERS | PAGING_PARAMETERS | RESULT_PARAMETERS | set(allowed)
    unknown = sorted(set(query) - known)
    if unknown and lenient:
        query = query.copy()
        for name in unknown:
            del query[name]
    elif unknown:
        raise InvalidSearch(
            f"Unknown search parameter(s): {', '.join(unknown)}. "
            f"Supported: {', '.join(sorted(set(allowed) | PAGING_PARAMETERS | RESULT_PARAMETERS))}"
            ". (Send Prefer: handling=lenient to have unknown parameters ignored.)"
        )
    for name, values in query.lists():
        if name.startswith("_") and name not in REPEATABLE and len(values) > 1:
            raise InvalidSearch(f"{name} may be given once.")
    return query


@dataclass(frozen=True)
class Summary:
    """What the Bundle carries: its entries (unless ``count_only``) and ``total`` when
    ``with_total``."""

    count_only: bool
    with_total: bool


def summary_parse(query: QueryDict, *, total_by_default: bool) -> Summary:
    """``_summary=count`` or ``_count=0``: the total alone; ``_total=accurate|estimate``: a
    total with the entries, ``none``: none (the default depends on the resource: a total
    that costs a count over a patient's whole history is given only when asked)."""
    summary = query.get("_summary")
    if summary not in (None, "count", "false"):
        raise NotSupported(f"_summary={summary} is not supported (count and false are).")
    total = query.get("_total")
    if total not in (None, "none", "estimate", "accurate"):
        raise InvalidSearch("_total is none, estimate or accurate.")
    count_only = summary == "count" or query.get("_count") == "0"
    with_total = count_only or (total_by_default if total is None else total != "none")
    return Summary(count_only=count_only, with_total=with_total)


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
    if raw is None or raw == "0":  # 0: the total alone (summary_parse)
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


def date_bound_q(bound: DateBound, field: str, *, low: Any = None, high: Any = None) -> Q:
    """The filter on ``field`` for one ``date``-type value, by its prefix, over the half-open
    range ``[low, high)`` (the bound's own unless a caller gives it in another type, as
    dates for a birth date)."""
    low = bound.low if low is None else low
    high = bound.high if high is None else high
    before, at_or_after = Q(**{f"{field}__lt": low}), Q(**{f"{field}__gte": high})
    return {
        "eq": Q(**{f"{field}__gte": low, f"{field}__lt": high}),
        "ne": before | at_or_after,
        "gt": at_or_after,
        "sa": at_or_after,
        "ge": Q(**{f"{field}__gte": low}),
        "lt": before,
        "eb": before,
        "le": Q(**{f"{field}__lt": high}),
    }[bound.prefix]


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
