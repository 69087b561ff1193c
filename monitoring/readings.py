"""The core of the ingest pipeline, shared by the WebSocket and REST paths.

Parsing and validation are pure and cheap (no queries); storage is one multi-row
``INSERT ... ON CONFLICT (device_id, seq) DO NOTHING RETURNING`` per chunk, so a batch of
readings costs one round trip and duplicates are stored once. On PostgreSQL, whose readings
table is partitioned by time, the same statement writes the idempotency keys to their own
table first (``_POSTGRES_INSERT``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from common import metrics
from common.datetimes import iso_parse_storable
from common.errors import ValidationFailed
from common.ids import is_id, is_int
from monitoring.models import HEART_RATE_METRICS, Metric, Reading, ReadingKey

logger = logging.getLogger(__name__)

# The accepted range of a reading's number, by metric: bpm for the heart rates, relative toco
# units for uterine activity. Every ingest path validates through reading_parse (or
# reading_value_check), so these bounds hold for all of them.
VALUE_BOUNDS: dict[str, tuple[int, int]] = {
    Metric.HEART_RATE: (20, 300),
    Metric.FETAL_HEART_RATE: (50, 240),
    Metric.PULSE_RATE: (20, 300),
    Metric.UTERINE_ACTIVITY: (0, 100),
}
BPM_BOUNDS = {m: b for m, b in VALUE_BOUNDS.items() if m in HEART_RATE_METRICS}
OBSTETRIC_ONLY_METRICS = frozenset({Metric.FETAL_HEART_RATE, Metric.UTERINE_ACTIVITY})
_INSERT_CHUNK = 500

# PostgreSQL partitions the readings table by recorded_at, so (device_id, seq) cannot be
# unique there (a partitioned table's unique keys contain the partition key): the key goes to
# the plain table monitoring_readingkey in the same statement, and a reading is stored only
# when its key was new, whatever its recorded_at (a resend dated differently lands in no
# partition twice). Readings without a device or seq (manual ones) have no key. A seq
# repeated within one batch is stored once, the first occurrence.
_POSTGRES_INSERT = """
WITH t AS (
    SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::smallint[],
                         %s::timestamptz[], %s::bigint[], %s::bigint[])
        WITH ORDINALITY AS t(p, d, m, b, r, s, e, n)
), k AS (
    INSERT INTO {keys} (device_id, seq) SELECT d, s FROM t
    WHERE d IS NOT NULL AND s IS NOT NULL ON CONFLICT DO NOTHING RETURNING device_id, seq
)
INSERT INTO {table} ({columns})
SELECT p, d, m, b, r, %s, s, e FROM t
WHERE d IS NULL OR s IS NULL
   OR n IN (SELECT min(t.n) FROM t JOIN k ON k.device_id = t.d AND k.seq = t.s GROUP BY t.d, t.s)
RETURNING id, patient_id, device_id, seq, metric, bpm
"""


@dataclass(frozen=True, slots=True)
class Target:
    """What ingest needs to know about where a reading goes (cacheable per connection)."""

    patient_id: int
    place_id: int
    ward_id: int | None
    profile: str
    device_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReadingIn:
    patient_id: int
    device_id: int | None
    metric: str
    value: int
    recorded_at: datetime
    seq: int | None
    entered_by_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredReading:
    id: int
    patient_id: int
    device_id: int | None
    ward_id: int | None
    metric: str
    value: int
    recorded_at: datetime
    received_at: datetime
    seq: int | None

    def as_event(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "patient": self.patient_id,
            "device": self.device_id,
            "metric": self.metric,
            **value_fields(self.metric, self.value),
            "recorded_at": self.recorded_at.isoformat(),
            "seq": self.seq,
        }


def value_fields(metric: str, value: int) -> dict[str, int]:
    """A reading's number as the wire carries it: ``value``, and ``bpm`` for heart rates."""
    if metric in HEART_RATE_METRICS:
        return {"value": value, "bpm": value}
    return {"value": value}


@dataclass(frozen=True, slots=True)
class RecordedAtWindow:
    """When readings that arrive at one moment may have been recorded: not older than
    ``READING_MAX_AGE_DAYS``, at most ``READING_MAX_FUTURE_SECONDS`` ahead. Made once per frame
    or request (``at``), not per reading: settings and the clock are read once."""

    earliest: datetime
    latest: datetime

    @classmethod
    def at(cls, now: datetime | None = None) -> RecordedAtWindow:
        now = now or timezone.now()
        return cls(
            earliest=now - timedelta(days=settings.READING_MAX_AGE_DAYS),
            latest=now + timedelta(seconds=settings.READING_MAX_FUTURE_SECONDS),
        )


def reading_parse(
    raw: Any,
    *,
    target: Target,
    require_seq: bool,
    window: RecordedAtWindow | None = None,
    entered_by_id: int | None = None,
) -> ReadingIn:
    """Validate one reading object; raises ValidationFailed with per-field details.
    ``window``: when it may have been recorded (now's, when not given)."""
    if not isinstance(raw, dict):
        raise ValidationFailed("A reading must be a JSON object.")
    errors: dict[str, list[str]] = {}

    metric = raw.get("metric")
    if not (isinstance(metric, str) and metric in VALUE_BOUNDS):  # a list is no metric
        metric = None
        errors["metric"] = [f"Must be one of: {', '.join(VALUE_BOUNDS)}."]
    elif metric in OBSTETRIC_ONLY_METRICS and target.profile != "obstetric":
        errors["metric"] = [f"{metric} is only recorded for obstetric patients."]

    number, number_errors = reading_value_check(raw, metric=metric)
    errors.update(number_errors)

    recorded_at: datetime | None = None
    try:
        recorded_at = recorded_at_parse(
            raw.get("recorded_at"), window=window or RecordedAtWindow.at()
        )
    except ValueError as exc:
        errors["recorded_at"] = [str(exc)]

    seq = raw.get("seq")
    if seq is None:
        if require_seq:
            errors["seq"] = ["A positive integer sequence number is required."]
    elif not is_id(seq):
        errors["seq"] = ["Must be a positive integer."]

    if errors:
        raise ValidationFailed("The reading is not valid.", details=errors)
    # What the checks above established, said so that the type checker knows it too.
    assert metric in VALUE_BOUNDS and number is not None and recorded_at is not None
    return ReadingIn(
        patient_id=target.patient_id,
        device_id=target.device_id,
        metric=metric,
        value=number,
        recorded_at=recorded_at,
        seq=seq,
        entered_by_id=entered_by_id,
    )


def recorded_at_parse(value: Any, *, window: RecordedAtWindow) -> datetime:
    """A reading's time: ISO-8601 with a UTC offset that the database holds (see
    ``common.datetimes``), within ``window``; ValueError with a message otherwise."""
    if not isinstance(value, str):
        raise ValueError("An ISO-8601 date-time with a UTC offset is required.")
    recorded_at = iso_parse_storable(value)
    if recorded_at > window.latest:
        minutes = settings.READING_MAX_FUTURE_SECONDS // 60
        raise ValueError(f"Must not be more than {minutes} minutes in the future.")
    if recorded_at < window.earliest:
        raise ValueError(f"Must not be more than {settings.READING_MAX_AGE_DAYS} days old.")
    return recorded_at


def reading_value_check(raw: dict[str, Any], *, metric: Any) -> tuple[int | None, dict]:
    """The number of a reading, from ``value`` or (heart rates only) its old name ``bpm``.

    Returns the number and the field errors (empty when valid). Both names may be sent if they
    agree. The errors are keyed by the name the client used.
    """
    has_value, has_bpm = "value" in raw, "bpm" in raw
    heart_rate = metric in HEART_RATE_METRICS
    if not has_value and not has_bpm:
        name = "bpm" if heart_rate else "value"
        return None, {name: ["Required: the reading's number (`value`, or `bpm` for heart rates)."]}
    if has_bpm and metric in VALUE_BOUNDS and not heart_rate:
        return None, {"bpm": [f"`bpm` is only for heart-rate metrics; send `value` for {metric}."]}
    name = "value" if has_value else "bpm"
    number = raw[name]
    if not is_int(number):
        return None, {name: ["Must be an integer."]}
    if has_value and has_bpm and raw["bpm"] != number:
        return None, {"bpm": ["Must equal `value` when both are sent."]}
    if metric in VALUE_BOUNDS:
        low, high = VALUE_BOUNDS[metric]
        if not low <= number <= high:
            return None, {name: [f"Must be between {low} and {high} for {metric}."]}
    return number, {}


def readings_store(
    *,
    readings: Sequence[ReadingIn],
    wards: dict[int, int | None] | None = None,
    queue: Callable[[list[StoredReading]], object] | None = None,
    path: str = "rest",
) -> list[StoredReading]:
    """Store readings durably; returns only the rows inserted now (duplicates are skipped).

    ``path`` names the ingest path for the metrics (``ws``, ``rest``, ``hl7``:
    ``common.metrics.INGEST_PATHS``), counted here once per batch. ``wards`` maps patient id to
    ward id, carried into the result for broadcasting. ``queue`` is called with the new
    readings inside the same transaction (the ingest paths append them to the readings stream
    there): if it raises, nothing is stored, so a reading is stored exactly when it is queued
    for alarm evaluation.
    """
    if not readings:
        return []
    # --- metrics: one observation per batch
    started = time.perf_counter()
    try:
        stored = _readings_store(readings=readings, wards=wards, queue=queue)
    except Exception:
        metrics.INGEST_FLUSH_FAILURES.labels(path=path).inc()
        raise
    metrics.ingest_flush_observe(
        path=path, offered=len(readings), stored=len(stored), seconds=time.perf_counter() - started
    )
    return stored


def _readings_store(
    *,
    readings: Sequence[ReadingIn],
    wards: dict[int, int | None] | None,
    queue: Callable[[list[StoredReading]], object] | None,
) -> list[StoredReading]:
    wards = wards or {}
    received_at = timezone.now()
    table = Reading._meta.db_table
    keys = ReadingKey._meta.db_table
    ops = connection.ops
    stored: list[StoredReading] = []
    # ``bpm`` is the column of ``Reading.value`` (the model's ``db_column``).
    columns = "patient_id, device_id, metric, bpm, recorded_at, received_at, seq, entered_by_id"
    received_param = ops.adapt_datetimefield_value(received_at)
    postgres = connection.vendor == "postgresql"
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(readings), _INSERT_CHUNK):
            chunk = readings[start : start + _INSERT_CHUNK]
            _metrics_check(chunk)
            if postgres:
                # One array per column: a statement of constant size, so the driver does not
                # parse thousands of placeholders per flush (half the cost of a large batch).
                # Each array goes as one array literal made here, not as a list the driver
                # quotes element by element in Python (a third of the storing thread's time
                # at 6,000 readings/s).
                params: list[Any] = [
                    _array_literal([r.patient_id for r in chunk]),
                    _array_literal([r.device_id for r in chunk]),
                    _array_literal([r.metric for r in chunk]),
                    _array_literal([r.value for r in chunk]),
                    _array_literal([r.recorded_at.isoformat() for r in chunk]),
                    _array_literal([r.seq for r in chunk]),
                    _array_literal([r.entered_by_id for r in chunk]),
                    received_at,
                ]
                statement = _POSTGRES_INSERT.format(table=table, keys=keys, columns=columns)
            else:
                params = []
                for r in chunk:
                    params.extend(
                        (
                            r.patient_id,
                            r.device_id,
                            r.metric,
                            r.value,
                            ops.adapt_datetimefield_value(r.recorded_at),
                            received_param,
                            r.seq,
                            r.entered_by_id,
                        )
                    )
                source = "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
                statement = (
                    f"INSERT INTO {table} ({columns}) {source} "
                    "ON CONFLICT (device_id, seq) DO NOTHING "
                    "RETURNING id, patient_id, device_id, seq, metric, bpm"
                )
            cursor.execute(statement, params)
            inserted = cursor.fetchall()
            by_key = _index_by_key(chunk)
            for row_id, patient_id, device_id, seq, metric, value in inserted:
                r = by_key[(patient_id, device_id, seq, metric, value)].pop(0)
                stored.append(
                    StoredReading(
                        id=row_id,
                        patient_id=patient_id,
                        device_id=device_id,
                        ward_id=wards.get(patient_id),
                        metric=r.metric,
                        value=r.value,
                        recorded_at=r.recorded_at,
                        received_at=received_at,
                        seq=seq,
                    )
                )
        if queue is not None and stored:
            queue(stored)
    return stored


# The database (or the driver adapting a value) refused the statement for what is in it, not
# because it is unreachable: retrying the same rows cannot help, retrying the others can.
ROW_ERRORS = (DataError, IntegrityError, ValueError, OverflowError)


def readings_store_isolating(
    *, readings: Sequence[ReadingIn], **options: Any
) -> tuple[list[StoredReading], list[ReadingIn]]:
    """``readings_store`` (``options`` are its own: wards, queue...), and when the statement
    fails for its data, store by halves (each half in its own transaction) until the readings
    that fail alone are found: one bad row costs only itself, and the readings of every other
    device are stored and acked.

    Returns (stored now, refused). An unreachable database or stream raises as before.
    """
    try:
        return readings_store(readings=readings, **options), []
    except ROW_ERRORS as exc:
        if len(readings) == 1:
            logger.warning("the database refused reading %r: %r", readings[0], exc)
            return [], list(readings)
    middle = len(readings) // 2
    stored: list[StoredReading] = []
    refused: list[ReadingIn] = []
    for half in (readings[:middle], readings[middle:]):
        more, bad = readings_store_isolating(readings=half, **options)
        stored += more
        refused += bad
    return stored, refused


def _array_literal(values: list[Any]) -> str:
    """A PostgreSQL array literal of integers, ISO-8601 times or metric names (none of which
    holds a quote, comma, brace, backslash or space), with None as NULL."""
    return "{" + ",".join("NULL" if value is None else str(value) for value in values) + "}"


def _metrics_check(chunk: Sequence[ReadingIn]) -> None:
    # Every path validates the metric; a name that is none (a caller's bug) is refused here,
    # before it could break an array literal.
    names = {r.metric for r in chunk}
    if not VALUE_BOUNDS.keys() >= names:
        raise ValueError(f"unknown metric in {sorted(names - VALUE_BOUNDS.keys())}")


def _index_by_key(chunk: Iterable[ReadingIn]) -> dict[tuple, list[ReadingIn]]:
    # RETURNING gives ids and keys; match them back to the input to keep metric, value, time.
    index: dict[tuple, list[ReadingIn]] = {}
    for r in chunk:
        index.setdefault((r.patient_id, r.device_id, r.seq, r.metric, r.value), []).append(r)
    return index
