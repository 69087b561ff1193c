"""Rule state rebuilt from the database: Redis caches which band each patient is in and since
when (``state.py``), but never owns it. Whether an alarm is raised is what the open alerts in
PostgreSQL say; the hold and clear timers are replayed from the stored readings.

Each evaluator process trusts the cached state of a patient's metric only once it has rebuilt
it itself since the cache's epoch began: a key ``alarm:epoch`` that the first evaluator writes
into an empty Redis. A Redis that restarted empty or was flushed has no epoch (a new one is
written, and every process starts trusting afresh); a restarted evaluator trusts nothing yet.
So a restart of Redis or of an evaluator at any moment of an episode neither restarts its hold
time nor leaves an alert open after the condition cleared.

A rebuild is cheap where it cannot matter: a metric whose first reading of the batch is in
range and that has no open alert ends that reading idle whatever came before (nothing is read
for it). Otherwise the metric's readings of the last (longest hold + clear time + a margin)
before the batch are replayed through the rules, and the outcome is set to what the open
alerts say: raised at the open alert's priority, or nothing raised; an open alert whose
condition ended is given the time its readings came back in range, so it resolves after its
clear time.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from alerts.models import Alert
from alerts.rules import BRADY, KINDS, TACHY, BandState, Limits, band_step
from alerts.state import epoch_key, redis_client
from alerts.vocabulary import KIND_DEVICE_OFFLINE, OPEN_STATES, PRIORITY_RANK
from common import metrics
from monitoring.models import Reading

logger = logging.getLogger(__name__)

Key = tuple[int, str]  # (patient id, metric)
REPLAY_MARGIN_SECONDS = 60


@dataclass
class Trust:
    """What this process has rebuilt since the cache's epoch began."""

    epoch: str | None = None
    keys: set[Key] = field(default_factory=set)
    patients: set[int] = field(default_factory=set)  # their device_offline state


_trust = Trust()


def trust_reset() -> None:
    """Forget what this process rebuilt (tests; a new epoch does it by itself)."""
    _trust.epoch = None
    _trust.keys.clear()
    _trust.patients.clear()


def epoch_check(cached: bytes | str | None) -> Trust:
    """This process's trust, given the epoch the cache holds (``cached``, read with the
    batch's state): a missing epoch is written; a changed one makes the process trust
    nothing it had rebuilt."""
    value = cached.decode() if isinstance(cached, bytes) else cached
    if value is None:
        client = redis_client()
        client.set(epoch_key(), uuid.uuid4().hex, nx=True)
        raw = cast("bytes | None", client.get(epoch_key()))
        value = raw.decode() if raw is not None else None
    if value != _trust.epoch:
        if _trust.epoch is not None:
            metrics.ALARM_STATE_RESETS.inc()
            logger.error(
                "alarm rule state in Redis was lost (Redis restarted empty or was flushed): "
                "rebuilding it from the stored readings and the open alerts"
            )
        _trust.epoch = value
        _trust.keys.clear()
        _trust.patients.clear()
    return _trust


def _window(limits: Limits, clear_seconds: float) -> float:
    return (
        max(limits.hold_high_seconds, limits.hold_medium_seconds, limits.hold_low_seconds)
        + clear_seconds
        + REPLAY_MARGIN_SECONDS
    )


def open_alerts(patient_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    """(patient, kind) -> priority rank of the open alerts of the band kinds and offline."""
    kinds = [*KINDS.values(), KIND_DEVICE_OFFLINE]
    rows = Alert.objects.filter(
        patient_id__in=list(patient_ids), kind__in=kinds, state__in=OPEN_STATES
    ).values_list("patient_id", "kind", "priority")
    return {(patient, kind): PRIORITY_RANK.get(priority, 0) for patient, kind, priority in rows}


def band_states_rebuild(
    *,
    firsts: dict[Key, Any],
    limits: dict[int, dict[str, Limits]],
    opened: dict[tuple[int, str], int],
    clear_seconds: float,
) -> dict[Key, BandState]:
    """The rule state of each (patient, metric) just before its first reading of the batch
    (``firsts``: that reading), from the stored readings and the open alerts (``opened``)."""
    states: dict[Key, BandState] = {}
    replay: dict[Key, tuple[datetime, datetime]] = {}
    for key, first in firsts.items():
        patient_id, metric = key
        metric_limits = limits[patient_id][metric]
        side, _ = metric_limits.classify(first.value)
        open_side = _open_side(key, opened)
        if side is None and open_side is None:
            states[key] = BandState()  # the first reading ends idle whatever came before
            continue
        start = first.recorded_at - timedelta(seconds=_window(metric_limits, clear_seconds))
        replay[key] = (start, first.recorded_at)
    if not replay:
        return states
    readings: dict[Key, list[tuple[int, datetime]]] = defaultdict(list)
    rows = (
        Reading.objects.filter(
            patient_id__in={patient for patient, _ in replay},
            metric__in={metric for _, metric in replay},
            recorded_at__gte=min(start for start, _ in replay.values()),
            recorded_at__lt=max(end for _, end in replay.values()),
        )
        .order_by("recorded_at", "seq", "id")
        .values_list("patient_id", "metric", "value", "recorded_at")
    )
    for patient_id, metric, bpm, recorded_at in rows:
        span = replay.get((patient_id, metric))
        if span is not None and span[0] <= recorded_at < span[1]:
            readings[(patient_id, metric)].append((bpm, recorded_at))
    for key, (start, _end) in replay.items():
        states[key] = _replayed(
            readings[key],
            limits=limits[key[0]][key[1]],
            open_side=_open_side(key, opened),
            open_rank=_open_rank(key, opened),
            clear_seconds=clear_seconds,
            start=start,
        )
    return states


def _open_side(key: Key, opened: dict[tuple[int, str], int]) -> str | None:
    patient_id, metric = key
    for side in (BRADY, TACHY):
        kind = KINDS.get((metric, side))
        if kind is not None and (patient_id, kind) in opened:
            return side
    return None


def _open_rank(key: Key, opened: dict[tuple[int, str], int]) -> int:
    side = _open_side(key, opened)
    return 0 if side is None else opened[(key[0], KINDS[(key[1], side)])]


def _replayed(
    readings: Sequence[tuple[int, datetime]],
    *,
    limits: Limits,
    open_side: str | None,
    open_rank: int,
    clear_seconds: float,
    start: datetime,
) -> BandState:
    state = BandState()
    back_in_range: float | None = start.timestamp()  # when the open side's condition ended
    for bpm, recorded_at in readings:
        at = recorded_at.timestamp()
        state, _ = band_step(state, limits=limits, bpm=bpm, at=at, clear_seconds=clear_seconds)
        on_open_side = open_side is not None and limits.classify(bpm)[0] == open_side
        if on_open_side:
            back_in_range = None
        elif back_in_range is None:
            back_in_range = at
    if open_side is None:  # nothing raised, whatever the replay would have raised
        if state.side is None:
            return BandState()
        return BandState(side=state.side, starts=dict(state.starts))
    if state.side == open_side:
        state.raised = open_rank
        return state
    # The open alert's condition ended: it resolves once back in range for the clear time.
    return BandState(side=open_side, raised=open_rank, clear_since=back_in_range)
