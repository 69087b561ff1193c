"""The CTG step of the alarm evaluation (``batch_evaluation``): for each obstetric patient in
a batch of new readings, at most every ``ALARM_CTG_EVALUATE_SECONDS`` of the readings' own
time, analyse the evaluator's window (``ctg.window``: the last 30 minutes of monitored time,
read as the API reads it), raise or resolve the CTG alerts, and keep the patient's latest
classification (``CtgClassification``, published to the dashboards when it changes).

The readings in hand count even before the database shows them: readings reach the stream in
the transaction that stores them (``monitoring.services.readings_ingest``), so the evaluator can
read a batch before its rows are committed. The window cache fills the seconds the query did
not return from the batches' own readings until the database has them (``alerts.ctg_window``),
so a classification never depends on that race: a monitor that sends one last batch and stops
is classified from it, not as a window without signal that no later reading would correct.

Cost: a patient evaluated costs one grouped query of the seconds of its window that may have
changed since its last evaluation (the process keeps the window: ``alerts.ctg_window``; the
whole window and its look-back, about 16,000 rows, on its first evaluation and every few minutes) and
the analysis, on the kept one-second grid (a few milliseconds); a patient not yet due costs
nothing beyond its share of one MGET. The rule state is one small record per patient in
Redis; the classifications of the patients evaluated are read in one query and written only
on a change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.utils import timezone

from alerts import services
from alerts.changes import AlertChanges
from alerts.ctg_rules import (
    PRIORITIES,
    CtgState,
    Episode,
    ctg_conditions,
    ctg_hold,
    episode_step,
)
from alerts.ctg_window import ctg_windows
from alerts.models import Alert
from alerts.selectors import ctg_classifications_of_patients, ctg_limits_for_patients
from alerts.state import STATE_TTL_SECONDS, key_prefix, redis_client
from ctg.maternal import maternal_channel
from ctg.window import CTG_WINDOW, ctg_read
from monitoring.models import Metric
from monitoring.selectors import CTG_METRICS

# Readings of these metrics make a patient due for CTG evaluation (both are recorded for
# obstetric patients only, so no profile lookup is needed).
CTG_TRIGGER_METRICS = frozenset({Metric.FETAL_HEART_RATE, Metric.UTERINE_ACTIVITY})


def ctg_state_key(patient_id: int) -> str:
    return f"{key_prefix()}ctg:{patient_id}"


def ctg_alarms_evaluate(*, stored: Sequence[Any], now: datetime | None = None) -> list[Alert]:
    """Run the CTG alarm rules for the obstetric patients of this batch that are due."""
    now = now or timezone.now()
    latest: dict[int, datetime] = {}
    devices: dict[int, int | None] = {}
    wards: dict[int, int | None] = {}
    earliest: dict[int, datetime] = {}  # of the window's metrics, for the window cache
    batch: dict[int, list[Any]] = defaultdict(list)  # ... and their readings
    for reading in stored:
        if reading.metric in CTG_METRICS:
            batch[reading.patient_id].append(reading)
            if (
                reading.patient_id not in earliest
                or reading.recorded_at < earliest[reading.patient_id]
            ):
                earliest[reading.patient_id] = reading.recorded_at
        if reading.metric not in CTG_TRIGGER_METRICS:
            continue
        if reading.patient_id not in latest or reading.recorded_at > latest[reading.patient_id]:
            latest[reading.patient_id] = reading.recorded_at
            devices[reading.patient_id] = reading.device_id
            wards[reading.patient_id] = reading.ward_id
    ctg_windows.seen(earliest, keep=latest, readings=batch)
    if not latest:
        return []
    client = redis_client()
    patients = sorted(latest)
    # redis-py types a reply as ``Awaitable | Any`` (shared with its asyncio client).
    raw_states = cast("list[bytes | None]", client.mget([ctg_state_key(p) for p in patients]))
    states = {p: CtgState.decode(raw) for p, raw in zip(patients, raw_states, strict=True)}
    due = [p for p in patients if latest[p].timestamp() >= states[p].next_at]
    if not due:
        return []
    limits = ctg_limits_for_patients(due)
    shown = ctg_classifications_of_patients(patient_ids=due)
    interval = float(settings.ALARM_CTG_EVALUATE_SECONDS)
    clear = float(settings.ALARM_CTG_CLEAR_SECONDS)
    changes = AlertChanges(at=now)
    writes: dict[str, CtgState] = {}
    for patient_id in due:
        at = latest[patient_id]
        state = states[patient_id]
        # The window ends after the latest reading's second, so that second counts; the
        # grid holds the look-back before it too (``ctg.window``: the API reads the same).
        end = at.replace(microsecond=0) + timedelta(seconds=1)
        start = end - timedelta(seconds=CTG_WINDOW.span_seconds)
        series = ctg_windows.series(patient_id=patient_id, start=start, end=end)
        mhr = maternal_channel(series[Metric.HEART_RATE], series[Metric.PULSE_RATE])
        reading = ctg_read(
            fhr=series[Metric.FETAL_HEART_RATE],
            ua=series[Metric.UTERINE_ACTIVITY],
            mhr=mhr,
            start=start.timestamp(),
            end=end.timestamp(),
        )
        result = reading.result
        conditions = ctg_conditions(
            result=result,
            fhr=reading.fhr,
            mhr=mhr[reading.offset :],
            monitored_since=reading.monitored_since or result.end,
            limits=limits[patient_id],
            maternal=reading.maternal,
        )
        moment = at.timestamp()
        episodes = dict(state.episodes)
        for kind, condition in conditions.items():
            episode, action = episode_step(
                episodes.get(kind) or Episode(),
                active=condition.active,
                at=moment,
                hold=ctg_hold(kind, limits[patient_id]),
                clear=clear,
            )
            episodes[kind] = episode
            if action == "raise":
                changes.raise_alert(
                    patient_id=patient_id,
                    device_id=devices[patient_id],
                    kind=kind,
                    priority=PRIORITIES[kind],
                    message=condition.message,
                )
            elif action == "resolve":
                changes.resolve(
                    patient_id=patient_id,
                    kind=kind,
                    note=f"The condition has been clear for {int(clear)} s.",
                )
        services.ctg_classification_record(
            patient_id=patient_id,
            ward_id=wards[patient_id],
            current=shown.get(patient_id),
            classification=result.classification,
            baseline_bpm=result.baseline_bpm,
            reasons=result.reasons,
            at=at,
        )
        writes[ctg_state_key(patient_id)] = CtgState(next_at=moment + interval, episodes=episodes)

    # Alerts first, rule state after (as the band rules): a failed alert write leaves the
    # state where it was, and the next evaluation raises it again.
    pipe = client.pipeline(transaction=False)
    for key, new_state in writes.items():
        pipe.set(key, new_state.encode(), ex=STATE_TTL_SECONDS)
    pipe.execute()
    return changes.alerts
