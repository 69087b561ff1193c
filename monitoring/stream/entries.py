"""The readings stream: every stored reading, queued durably in Redis for the alarm evaluator.

Alarm evaluation runs in its own processes (``manage.py alarms_evaluate``), which read this
stream; a reading stored while no evaluator runs waits here until one does.

Layout
    ``READINGS_STREAM_PARTITIONS`` (N) Redis streams, ``{prefix}readings:{patient_id % N}``: a
    patient's readings always go to one partition, in the order they were appended. An entry
    holds the readings of one append (a flush of the ingest batcher) for its partition, one
    line each (:func:`stream_entries_append`, :func:`entry_readings`): one ``XADD`` per
    partition and flush, not per reading, costs Redis and the storing thread about a
    thirtieth of the time. Each partition keeps its entries about
    ``READINGS_STREAM_RETENTION_SECONDS`` (``XADD MINID ~``: the entry's id is its time). Trimming does not
    wait for the evaluator: entries trimmed before they were evaluated are never evaluated
    (docs/alarms.md, "The evaluator process"). One consumer group (:data:`GROUP`), created at
    the start of each stream, so readings appended before any evaluator ran are evaluated too.


The stream's entries (:func:`reading_encode`, :func:`entry_readings`), their keys and clients,
and the append of the ingest paths are here; the lag report is ``stream.lag``, and the reader
with its partition leases lives with its only user, the alarm evaluator
(``alerts.stream_reader``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import redis
from django.conf import settings

from common import redis_clients
from monitoring.models import Metric
from monitoring.readings import StoredReading

# redis-py's sync and asyncio clients share their command signatures, so every reply is typed
# ``Awaitable[Any] | Any``; the sync client used here returns the value itself, which the
# ``cast``s below name (the shape of each reply is in the Redis command reference).

GROUP = "alarms"  # the evaluators' consumer group


# --- Keys and the client --------------------------------------------------------------------


def redis_prefix() -> str:
    """The prefix of this deployment's own Redis keys (the cache's ``KEY_PREFIX``): the
    readings stream's here, the alarm rule state's in ``alerts.state``."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'pm')}:"


def partitions() -> int:
    return int(settings.READINGS_STREAM_PARTITIONS)


def partition_of(patient_id: int) -> int:
    return patient_id % partitions()


def partition_key(partition: int) -> str:
    return f"{redis_prefix()}readings:{partition}"


def lease_key(partition: int) -> str:
    return f"{redis_prefix()}readings-lease:{partition}"


def evaluators_key() -> str:
    return f"{redis_prefix()}readings-evaluators"


def redis_client() -> redis.Redis:
    """This process's client of ``REDIS_URL`` for the stream and the alarm rule state (no
    read timeout: the evaluator blocks on ``XREADGROUP``)."""
    return redis_clients.redis_client(timeout=None)


def append_client() -> redis.Redis:
    """The client that appends to the stream from the ingest paths: a Redis that does not
    answer (hung, black-holed) costs one flush at most ``REDIS_APPEND_TIMEOUT``, tried once,
    before the breaker of ``stream.backlog`` sends every append to the backlog instead."""
    return redis_clients.redis_client(timeout=settings.REDIS_APPEND_TIMEOUT, retries=False)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def entry_order(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id (``<ms>-<seq>``) as a tuple that orders as Redis orders them."""
    ms, _, seq = text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def server_ms(client: redis.Redis) -> int:
    seconds, microseconds = cast("tuple[int, int]", client.time())
    return int(seconds) * 1000 + int(microseconds) // 1000


# --- Entries --------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def entry_time(microseconds: int) -> datetime:
    """A time of a stream entry (microseconds since the epoch) as an aware datetime."""
    return _EPOCH + microseconds * _MICROSECOND


def _optional(value: int | None) -> int | str:
    return "" if value is None else value


def reading_encode(reading: StoredReading) -> dict[str, int | str]:
    """The stream entry of a stored reading.

    Integers (Redis stores them compactly, about 70 bytes an entry), ``""`` for None, times as
    microseconds since the epoch: the same instant, without the sender's UTC offset, as in the
    database. The number's key is ``bpm``, as in the entries that Redis and the backlog already
    hold, for every metric.
    """
    return {
        "id": reading.id,
        "patient": reading.patient_id,
        "device": _optional(reading.device_id),
        "ward": _optional(reading.ward_id),
        "metric": reading.metric,
        "bpm": reading.value,
        "recorded_us": (reading.recorded_at - _EPOCH) // _MICROSECOND,
        "received_us": (reading.received_at - _EPOCH) // _MICROSECOND,
        "seq": _optional(reading.seq),
    }


_FIELDS = ("id", "patient", "device", "ward", "metric", "bpm", "recorded_us", "received_us", "seq")
_FIELDS_AS_BYTES = {name: name.encode() for name in _FIELDS}
_FIELDS_AS_TEXT = {name: name for name in _FIELDS}
_READINGS = "readings"  # the field of a packed entry: its readings, one line each


def reading_decode(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> StoredReading:
    """The stored reading of an entry of one reading (the inverse of :func:`reading_encode`;
    entries appended by releases before readings were packed have this form).

    Redis returns bytes; ``int()`` reads them as they are, so only the metric is decoded (the
    evaluator decodes every reading it evaluates).
    """
    data = cast("Mapping[bytes | str, bytes | str]", fields)
    names = _FIELDS_AS_BYTES if isinstance(next(iter(data), ""), bytes) else _FIELDS_AS_TEXT

    def optional(name: str) -> int | None:
        value = data.get(names[name], "")
        return int(value) if value not in ("", b"") else None

    return StoredReading(
        id=int(data[names["id"]]),
        patient_id=int(data[names["patient"]]),
        device_id=optional("device"),
        ward_id=optional("ward"),
        metric=text(data[names["metric"]]),
        value=int(data[names["bpm"]]),
        recorded_at=_EPOCH + int(data[names["recorded_us"]]) * _MICROSECOND,
        received_at=_EPOCH + int(data[names["received_us"]]) * _MICROSECOND,
        seq=optional("seq"),
    )


# A metric as one character in a line (the stream holds about 70 bytes per reading), keyed by
# the metric's name: looked up without making a ``Metric`` of it.
_METRIC_CODES: dict[str, str] = {
    Metric.HEART_RATE: "h",
    Metric.FETAL_HEART_RATE: "f",
    Metric.PULSE_RATE: "p",
    Metric.UTERINE_ACTIVITY: "u",
}
_METRICS_BY_CODE = {code: str(metric) for metric, code in _METRIC_CODES.items()}


def _line(entry: Mapping[str, int | str]) -> str:
    """A reading of reading_encode as one line: id, patient, device, ward, metric code, value,
    recorded_us, received_us - recorded_us, seq ("" for None)."""
    recorded_us = int(entry["recorded_us"])
    return (
        f"{entry['id']},{entry['patient']},{entry['device']},{entry['ward']},"
        f"{_METRIC_CODES[str(entry['metric'])]},{entry['bpm']},{recorded_us},"
        f"{int(entry['received_us']) - recorded_us},{entry['seq']}"
    )


def _line_decode(line: str) -> StoredReading:
    id_, patient, device, ward, metric, value, recorded_us, received_after, seq = line.split(",")
    recorded = int(recorded_us)
    return StoredReading(
        id=int(id_),
        patient_id=int(patient),
        device_id=int(device) if device else None,
        ward_id=int(ward) if ward else None,
        metric=_METRICS_BY_CODE[metric],
        value=int(value),
        recorded_at=_EPOCH + recorded * _MICROSECOND,
        received_at=_EPOCH + (recorded + int(received_after)) * _MICROSECOND,
        seq=int(seq) if seq else None,
    )


def entry_readings(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> list[StoredReading]:
    """The stored readings of a stream entry, in the order they were appended: the lines of a
    packed entry (:func:`stream_entries_append`), or the one reading of an entry of the older
    form. Raises KeyError or ValueError for an entry that is neither."""
    data = cast("Mapping[bytes | str, bytes | str]", fields)
    packed = data.get(_READINGS.encode(), data.get(_READINGS))
    if packed is None:
        return [reading_decode(fields)]
    return [_line_decode(line) for line in text(packed).split("\n")]


def stream_entries_append(entries: Sequence[Mapping[str, int | str]]) -> None:
    """Append encoded readings (:func:`reading_encode`) to their patients' partitions, in the
    order given, as one packed entry per partition (the deferred ones of
    ``monitoring.stream.backlog`` come this way too)."""
    if not entries:
        return
    lines: dict[int, list[str]] = {}
    for entry in entries:
        lines.setdefault(partition_of(int(entry["patient"])), []).append(_line(entry))
    # Entries older than the retention go (whole nodes of them: "~"), evaluated or not.
    oldest_ms = int((time.time() - settings.READINGS_STREAM_RETENTION_SECONDS) * 1000)
    pipe = append_client().pipeline(transaction=False)
    for partition, packed in lines.items():
        pipe.xadd(
            partition_key(partition),
            {_READINGS: "\n".join(packed)},
            minid=f"{max(oldest_ms, 0)}-0",
            approximate=True,
        )
    pipe.execute()
