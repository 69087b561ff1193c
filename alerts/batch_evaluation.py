"""Every alarm rule on one batch of stored readings: the limit bands and the device-offline
resolution here, then the CTG step (``ctg_alarms``); alerts are raised, escalated or resolved.
At steady state a batch costs one query (the patients' limits) and one Redis round trip;
alerts are written only on a transition. The rule state in Redis is a cache: what this process
has not rebuilt since the cache's epoch began is rebuilt from the database first
(``state_rebuild``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from alerts.changes import AlertChanges
from alerts.ctg_alarms import ctg_alarms_evaluate
from alerts.models import Alert
from alerts.rules import KINDS, METRIC_LABELS, PRIORITY, BandState, alarm_message, band_step
from alerts.selectors import limits_for_patients
from alerts.state import (
    STATE_TTL_SECONDS,
    epoch_key,
    last_reading_key,
    offline_key,
    redis_client,
    state_key,
)
from alerts.state_rebuild import band_states_rebuild, epoch_check, open_alerts
from alerts.vocabulary import KIND_DEVICE_OFFLINE


def _epoch(value: datetime) -> float:
    return value.timestamp()


def alarms_evaluate(*, stored: Sequence[Any], now: datetime | None = None) -> list[Alert]:
    """Evaluate the alarm rules on a batch of newly stored readings (both ingest paths).

    ``stored`` is a list of ``monitoring.readings.StoredReading``. Returns the alerts that were
    raised, escalated or resolved by this batch.
    """
    if not stored:
        return []
    now = now or timezone.now()
    groups: dict[tuple[int, str], list[Any]] = defaultdict(list)
    devices: dict[int, int | None] = {}
    last_reading: dict[str, float] = {}
    for reading in stored:
        groups[(reading.patient_id, reading.metric)].append(reading)
        if reading.device_id is not None:
            devices[reading.patient_id] = reading.device_id
            member = str(reading.device_id)
            received = _epoch(reading.received_at)
            if received > last_reading.get(member, 0.0):
                last_reading[member] = received

    limits = limits_for_patients({patient_id for patient_id, _ in groups})
    group_keys = [key for key in groups if key[1] in limits.get(key[0], {})]
    offline_patients = list(devices)
    client = redis_client()
    redis_keys = [state_key(*key) for key in group_keys] + [
        offline_key(p) for p in offline_patients
    ]
    # One round trip: read the rule state and its epoch, and note when each device last sent
    # a reading (the device-offline scan reads it).
    pipe = client.pipeline(transaction=False)
    pipe.mget([*redis_keys, epoch_key()])
    if last_reading:
        pipe.zadd(last_reading_key(), last_reading, gt=True)
    results = pipe.execute()
    values, epoch = results[0][:-1], results[0][-1]
    clear_seconds = float(settings.ALARM_CLEAR_SECONDS)

    # What this process has not rebuilt since the cache's epoch began comes from the database.
    trust = epoch_check(epoch)
    untrusted = [key for key in group_keys if key not in trust.keys]
    offline_untrusted = [p for p in offline_patients if p not in trust.patients]
    rebuilt: dict[tuple[int, str], BandState] = {}
    opened: dict[tuple[int, str], int] = {}
    if untrusted or offline_untrusted:
        opened = open_alerts({p for p, _ in untrusted} | set(offline_untrusted))
    if untrusted:
        firsts = {
            key: min(groups[key], key=lambda r: (r.recorded_at, r.seq or 0)) for key in untrusted
        }
        rebuilt = band_states_rebuild(
            firsts=firsts, limits=limits, opened=opened, clear_seconds=clear_seconds
        )
    offline_values = list(values[len(group_keys) :])
    for index, patient_id in enumerate(offline_patients):
        if patient_id in offline_untrusted:
            offline_values[index] = (patient_id, KIND_DEVICE_OFFLINE) in opened or None

    changes = AlertChanges(at=now)
    writes: dict[str, BandState] = {}
    for key, raw in zip(group_keys, values, strict=False):
        patient_id, metric = key
        metric_limits = limits[patient_id][metric]
        before = rebuilt[key] if key in rebuilt else BandState.decode(raw)
        state = before
        for reading in sorted(groups[key], key=lambda r: (r.recorded_at, r.seq or 0)):
            state, transitions = band_step(
                state,
                limits=metric_limits,
                bpm=reading.value,
                at=_epoch(reading.recorded_at),
                clear_seconds=clear_seconds,
            )
            for transition in transitions:
                kind = KINDS[(metric, transition.side)]
                if transition.action == "raise":
                    changes.raise_alert(
                        patient_id=patient_id,
                        device_id=reading.device_id,
                        kind=kind,
                        priority=PRIORITY[transition.level],
                        message=alarm_message(
                            kind=kind,
                            limits=metric_limits,
                            side=transition.side,
                            level=transition.level,
                            bpm=transition.bpm,
                            held=transition.at - transition.since,
                        ),
                    )
                else:
                    changes.resolve(
                        patient_id=patient_id,
                        kind=kind,
                        note=f"{METRIC_LABELS[metric].capitalize()} back to {transition.bpm} bpm.",
                    )
        if state != before or key in rebuilt:
            writes[state_key(*key)] = state

    resolved_offline: list[str] = []
    for patient_id, raw in zip(offline_patients, offline_values, strict=False):
        if raw:
            changes.resolve(
                patient_id=patient_id,
                kind=KIND_DEVICE_OFFLINE,
                note="The device is sending readings again.",
            )
            resolved_offline.append(offline_key(patient_id))

    # Alerts first, rule state after: if an alert write fails the state is not advanced and
    # the next batch raises it again.
    if writes or resolved_offline:
        pipe = client.pipeline(transaction=False)
        for redis_key, state in writes.items():
            if state.is_idle:
                pipe.delete(redis_key)
            else:
                pipe.set(redis_key, state.encode(), ex=STATE_TTL_SECONDS)
        if resolved_offline:
            pipe.delete(*resolved_offline)
        pipe.execute()
    trust.keys.update(untrusted)
    trust.patients.update(offline_untrusted)
    return changes.alerts + ctg_alarms_evaluate(stored=stored, now=now)
