"""Alarm rules: turn stored readings into raised, escalated and resolved alerts.

Every band is a condition "rate at or below / at or above a threshold" with an IEC 60601-1-8
priority and a hold time: the condition must last that long (measured on the readings' own
``recorded_at``) before anything is raised, so transients raise nothing. Bands are nested (a
rate in the high band is also in the medium band), so an alert is raised at the highest
priority whose condition has lasted its hold time, and escalates while the episode worsens.

Rule state (which band a patient is in and since when) lives in Redis, so readings of one
patient may arrive on any server process. It is read with one MGET per batch and written
only when a band changes or an alert is raised; at steady state a batch costs one query (the
patients' limits) and one Redis round trip. Alerts are written only on a transition.

Defaults, sources and how to change them: docs/alarms.md.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from clinical.models import AlarmLimit, Alert, Patient

logger = logging.getLogger(__name__)

HIGH, MEDIUM, LOW = "high", "medium", "low"
LEVEL = {LOW: 1, MEDIUM: 2, HIGH: 3}
PRIORITY = {1: LOW, 2: MEDIUM, 3: HIGH}
BRADY, TACHY = "brady", "tachy"

KIND_BRADYCARDIA = "bradycardia"
KIND_TACHYCARDIA = "tachycardia"
KIND_FETAL_BRADYCARDIA = "fetal_bradycardia"
KIND_FETAL_TACHYCARDIA = "fetal_tachycardia"
KIND_DEVICE_OFFLINE = "device_offline"

KINDS: dict[tuple[str, str], str] = {
    ("heart_rate", BRADY): KIND_BRADYCARDIA,
    ("heart_rate", TACHY): KIND_TACHYCARDIA,
    ("fetal_heart_rate", BRADY): KIND_FETAL_BRADYCARDIA,
    ("fetal_heart_rate", TACHY): KIND_FETAL_TACHYCARDIA,
}
KIND_LABELS = {
    KIND_BRADYCARDIA: "Bradycardia",
    KIND_TACHYCARDIA: "Tachycardia",
    KIND_FETAL_BRADYCARDIA: "Fetal bradycardia",
    KIND_FETAL_TACHYCARDIA: "Fetal tachycardia",
    KIND_DEVICE_OFFLINE: "Device offline",
}
KIND_METRIC = {kind: metric for (metric, _side), kind in KINDS.items()}
METRIC_LABELS = {"heart_rate": "heart rate", "fetal_heart_rate": "fetal heart rate"}

THRESHOLD_FIELDS = (
    "brady_high",
    "brady_medium",
    "brady_low",
    "tachy_low",
    "tachy_medium",
    "tachy_high",
)
HOLD_FIELDS = ("hold_high_seconds", "hold_medium_seconds", "hold_low_seconds")
# Which metrics each monitoring profile records.
PROFILE_METRICS = {"adult": ("heart_rate",), "obstetric": ("heart_rate", "fetal_heart_rate")}


@dataclass(frozen=True, slots=True)
class Limits:
    """The alarm bands of one metric. ``brady_*``: at or below; ``tachy_*``: at or above."""

    metric: str
    brady_high: int | None = None
    brady_medium: int | None = None
    brady_low: int | None = None
    tachy_low: int | None = None
    tachy_medium: int | None = None
    tachy_high: int | None = None
    hold_high_seconds: int = 10
    hold_medium_seconds: int = 20
    hold_low_seconds: int = 30
    source: str = field(default="default", compare=False)

    def classify(self, bpm: int) -> tuple[str | None, int]:
        """The side and the highest priority level whose band holds this rate (0: normal)."""
        for side, level in ((BRADY, 3), (BRADY, 2), (BRADY, 1)):
            threshold = getattr(self, f"{side}_{PRIORITY[level]}")
            if threshold is not None and bpm <= threshold:
                return side, level
        for side, level in ((TACHY, 3), (TACHY, 2), (TACHY, 1)):
            threshold = getattr(self, f"{side}_{PRIORITY[level]}")
            if threshold is not None and bpm >= threshold:
                return side, level
        return None, 0

    def levels(self, side: str, up_to: int) -> list[int]:
        """The priority levels with a band on this side, up to ``up_to`` (nested conditions)."""
        return [
            level
            for level in (1, 2, 3)
            if level <= up_to and getattr(self, f"{side}_{PRIORITY[level]}") is not None
        ]

    def hold(self, level: int) -> int:
        return int(getattr(self, f"hold_{PRIORITY[level]}_seconds"))

    def threshold(self, side: str, level: int) -> int | None:
        return getattr(self, f"{side}_{PRIORITY[level]}")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Defaults by monitoring profile and metric (sources in docs/alarms.md):
# - adult heart rate: NEWS2 (RCP 2017) pulse bands: <=40 score 3, 41-50 score 1, 91-110
#   score 1, 111-130 score 2, >=131 score 3; mapped to high / medium / low / medium / high.
# - obstetric maternal heart rate: MEWT (Shields et al. 2016): 111-130 medium, <50 or >130 high.
# - fetal heart rate: FIGO 2015: baseline <110 or >160 for 10 minutes medium, <100 for
#   3 minutes high (the hold time stands in for "baseline": the rate must stay in the band).
DEFAULT_LIMITS: dict[str, Limits] = {
    "adult:heart_rate": Limits(
        metric="heart_rate",
        brady_high=40,
        brady_medium=50,
        tachy_low=91,
        tachy_medium=111,
        tachy_high=131,
        hold_high_seconds=10,
        hold_medium_seconds=20,
        hold_low_seconds=30,
    ),
    "obstetric:heart_rate": Limits(
        metric="heart_rate",
        brady_high=49,
        tachy_medium=111,
        tachy_high=131,
        hold_high_seconds=10,
        hold_medium_seconds=20,
        hold_low_seconds=30,
    ),
    "obstetric:fetal_heart_rate": Limits(
        metric="fetal_heart_rate",
        brady_high=99,
        brady_medium=109,
        tachy_medium=161,
        hold_high_seconds=180,
        hold_medium_seconds=600,
        hold_low_seconds=600,
    ),
}


def default_limits(*, profile: str, metric: str) -> Limits | None:
    """The profile's default bands, with any ``settings.ALARM_LIMITS`` override applied."""
    key = f"{profile}:{metric}"
    base = DEFAULT_LIMITS.get(key)
    if base is None:
        return None
    override = (getattr(settings, "ALARM_LIMITS", None) or {}).get(key)
    if override:
        allowed = set(THRESHOLD_FIELDS) | set(HOLD_FIELDS)
        base = replace(base, **{k: v for k, v in override.items() if k in allowed})
    return base


def limits_from_model(limit: AlarmLimit) -> Limits:
    values = {name: getattr(limit, name) for name in (*THRESHOLD_FIELDS, *HOLD_FIELDS)}
    return Limits(metric=limit.metric, source="patient", **values)


def patient_limits(*, patient: Patient) -> list[Limits]:
    """The effective limits of every metric the patient's profile records."""
    overrides = {limit.metric: limit for limit in patient.alarm_limits.all()}
    result = []
    for metric in PROFILE_METRICS.get(patient.monitoring_profile, ()):
        if metric in overrides:
            result.append(limits_from_model(overrides[metric]))
        else:
            limits = default_limits(profile=patient.monitoring_profile, metric=metric)
            if limits is not None:
                result.append(limits)
    return result


def _limits_for_patients(patient_ids: Iterable[int]) -> dict[int, dict[str, Limits]]:
    """One query: every patient's profile joined with its overrides."""
    columns = [f"alarm_limits__{name}" for name in ("metric", *THRESHOLD_FIELDS, *HOLD_FIELDS)]
    rows = Patient.objects.filter(id__in=list(patient_ids)).values_list(
        "id", "monitoring_profile", *columns
    )
    overrides: dict[int, dict[str, Limits]] = defaultdict(dict)
    profiles: dict[int, str] = {}
    for row in rows:
        patient_id, profile, metric, *values = row
        profiles[patient_id] = profile
        if metric is not None:
            names = (*THRESHOLD_FIELDS, *HOLD_FIELDS)
            overrides[patient_id][metric] = Limits(
                metric=metric, source="patient", **dict(zip(names, values, strict=True))
            )
    result: dict[int, dict[str, Limits]] = {}
    for patient_id, profile in profiles.items():
        per_metric: dict[str, Limits] = {}
        for metric in PROFILE_METRICS.get(profile, ()):
            limits = overrides[patient_id].get(metric) or default_limits(
                profile=profile, metric=metric
            )
            if limits is not None:
                per_metric[metric] = limits
        result[patient_id] = per_metric
    return result


# --- Rule state ---------------------------------------------------------------------------


@dataclass(slots=True)
class BandState:
    """Where one patient's metric is: the abnormal side, when each nested band condition
    started (epoch seconds by priority level), the level already raised, and since when the
    rate has been back in range while an alert is still open."""

    side: str | None = None
    starts: dict[int, float] = field(default_factory=dict)
    raised: int = 0
    clear_since: float | None = None

    @classmethod
    def decode(cls, raw: bytes | str | None) -> BandState:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            side=data.get("side"),
            starts={int(k): float(v) for k, v in (data.get("starts") or {}).items()},
            raised=int(data.get("raised", 0)),
            clear_since=data.get("clear_since"),
        )

    def encode(self) -> str:
        return json.dumps(
            {
                "side": self.side,
                "starts": {str(k): v for k, v in self.starts.items()},
                "raised": self.raised,
                "clear_since": self.clear_since,
            },
            separators=(",", ":"),
        )

    @property
    def is_idle(self) -> bool:
        return self.side is None and not self.raised

    def copy(self) -> BandState:
        return BandState(self.side, dict(self.starts), self.raised, self.clear_since)


@dataclass(frozen=True, slots=True)
class Transition:
    """What one reading changed: raise (or escalate) at ``level``, or resolve ``side``."""

    action: str  # "raise" | "resolve"
    side: str
    level: int = 0
    bpm: int = 0
    at: float = 0.0
    since: float = 0.0


def band_step(
    state: BandState, *, limits: Limits, bpm: int, at: float, clear_seconds: float
) -> tuple[BandState, list[Transition]]:
    """Advance one metric's rule state by one reading (pure; ``at`` is epoch seconds)."""
    side, level = limits.classify(bpm)
    if side is None and state.side is None:
        return state, []  # the common case: in range and nothing pending
    state = state.copy()
    transitions: list[Transition] = []

    if state.side is not None and side != state.side:
        # The condition on the old side ended (back in range, or crossed to the other side).
        if state.raised:
            if side is None and clear_seconds > 0:
                if state.clear_since is None:
                    state.clear_since = at
                    state.starts = {}
                if at - state.clear_since < clear_seconds:
                    return state, transitions
            transitions.append(Transition("resolve", state.side, bpm=bpm, at=at))
        state = BandState()

    if side is None:
        return state, transitions

    if state.side is None:
        state.side = side
    state.clear_since = None
    active = limits.levels(side, level)
    state.starts = {lvl: state.starts.get(lvl, at) for lvl in active}
    held = [lvl for lvl in active if at - state.starts[lvl] >= limits.hold(lvl)]
    effective = max(held, default=0)
    if effective > state.raised:
        transitions.append(
            Transition(
                "raise", side, level=effective, bpm=bpm, at=at, since=state.starts[effective]
            )
        )
        state.raised = effective
    return state, transitions


# --- Redis ----------------------------------------------------------------------------------

STATE_TTL_SECONDS = 3600  # longer than any hold time; a silent patient starts afresh after it.


@lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def redis_client() -> redis.Redis:
    return _client_for(settings.REDIS_URL)


def key_prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'pm')}:alarm:"


def state_key(patient_id: int, metric: str) -> str:
    return f"{key_prefix()}band:{patient_id}:{metric}"


def last_reading_key() -> str:
    """A sorted set: device id -> when the server last received a reading from it."""
    return f"{key_prefix()}last-reading"


def offline_key(patient_id: int) -> str:
    """Set while the patient has an open device_offline alert (a reading then resolves it)."""
    return f"{key_prefix()}offline:{patient_id}"


# --- Evaluation -----------------------------------------------------------------------------


def _epoch(value: datetime) -> float:
    return value.timestamp()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"


def alarm_message(
    *, kind: str, limits: Limits, side: str, level: int, bpm: int, held: float
) -> str:
    threshold = limits.threshold(side, level)
    relation = "at or below" if side == BRADY else "at or above"
    return (
        f"{KIND_LABELS.get(kind, kind)}: {METRIC_LABELS.get(limits.metric, limits.metric)} "
        f"{bpm} bpm ({relation} {threshold}) for {_duration(held)}."
    )


def alarms_evaluate(*, stored: Sequence[Any], now: datetime | None = None) -> list[Alert]:
    """Evaluate the alarm rules on a batch of newly stored readings (both ingest paths).

    ``stored`` is a list of ``monitoring.ingest.StoredReading``. Returns the alerts that were
    raised, escalated or resolved by this batch.
    """
    from clinical import alerts as alert_services

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

    limits = _limits_for_patients({patient_id for patient_id, _ in groups})
    group_keys = [key for key in groups if key[1] in limits.get(key[0], {})]
    offline_patients = list(devices)
    client = redis_client()
    redis_keys = [state_key(*key) for key in group_keys] + [
        offline_key(p) for p in offline_patients
    ]
    # One round trip: read the rule state, and note when each device last sent a reading
    # (the device-offline scan reads it).
    pipe = client.pipeline(transaction=False)
    if redis_keys:
        pipe.mget(redis_keys)
    if last_reading:
        pipe.zadd(last_reading_key(), last_reading, gt=True)
    results = pipe.execute()
    values = results[0] if redis_keys else []
    clear_seconds = float(getattr(settings, "ALARM_CLEAR_SECONDS", 0))

    changed: list[Alert] = []
    writes: dict[str, BandState] = {}
    for key, raw in zip(group_keys, values, strict=False):
        patient_id, metric = key
        metric_limits = limits[patient_id][metric]
        before = BandState.decode(raw)
        state = before
        for reading in sorted(groups[key], key=lambda r: (r.recorded_at, r.seq or 0)):
            state, transitions = band_step(
                state,
                limits=metric_limits,
                bpm=reading.bpm,
                at=_epoch(reading.recorded_at),
                clear_seconds=clear_seconds,
            )
            for transition in transitions:
                kind = KINDS[(metric, transition.side)]
                if transition.action == "raise":
                    alert = alert_services.alert_raise(
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
                        at=now,
                    )
                else:
                    alert = alert_services.alert_condition_resolve(
                        patient_id=patient_id,
                        kind=kind,
                        at=now,
                        note=f"{METRIC_LABELS[metric].capitalize()} back to {transition.bpm} bpm.",
                    )
                if alert is not None:
                    changed.append(alert)
        if state != before:
            writes[state_key(*key)] = state

    resolved_offline: list[str] = []
    for patient_id, raw in zip(offline_patients, values[len(group_keys) :], strict=False):
        if raw:
            alert = alert_services.alert_condition_resolve(
                patient_id=patient_id,
                kind=KIND_DEVICE_OFFLINE,
                at=now,
                note="The device is sending readings again.",
            )
            if alert is not None:
                changed.append(alert)
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
    return changed


def alarms_offline_scan(*, now: datetime | None = None) -> list[Alert]:
    """Raise device_offline (low) for monitoring devices that sent no reading for
    DEVICE_OFFLINE_SECONDS; resolve it for devices that are back (a backstop to the fast path
    in ``alarms_evaluate``) or no longer monitor that patient.

    A device's last reading time comes from Redis (written by ``alarms_evaluate``); a device
    with none there (never sent a reading since Redis started) falls back to its
    ``last_seen_at`` connection presence. Devices never seen at all raise nothing.
    """
    from clinical import alerts as alert_services
    from monitoring.models import Device

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.DEVICE_OFFLINE_SECONDS)
    changed: list[Alert] = []
    client = redis_client()

    stale = (
        Alert.objects.filter(kind=KIND_DEVICE_OFFLINE)
        .exclude(state=Alert.State.RESOLVED)
        .filter(
            Q(device__isnull=True)
            | Q(device__is_active=False)
            | ~Q(device__patient_id=F("patient_id"))
        )
        .values_list("patient_id", flat=True)
    )
    for patient_id in stale:
        alert = alert_services.alert_condition_resolve(
            patient_id=patient_id,
            kind=KIND_DEVICE_OFFLINE,
            at=now,
            note="The device no longer monitors this patient.",
        )
        client.delete(offline_key(patient_id))
        if alert is not None:
            changed.append(alert)

    open_offline = Alert.objects.filter(
        patient_id=OuterRef("patient_id"), kind=KIND_DEVICE_OFFLINE
    ).exclude(state=Alert.State.RESOLVED)
    devices = list(
        Device.objects.filter(
            is_active=True, patient__isnull=False, patient__discharged_at__isnull=True
        )
        .annotate(has_open=Exists(open_offline))
        .values_list("id", "patient_id", "serial", "last_seen_at", "has_open")
    )
    if not devices:
        return changed
    scores = client.zmscore(last_reading_key(), [str(row[0]) for row in devices])
    for (device_id, patient_id, serial, last_seen_at, has_open), score in zip(
        devices, scores, strict=True
    ):
        if score is not None:
            last = datetime.fromtimestamp(score, tz=UTC)
        elif last_seen_at is not None:
            last = last_seen_at
        else:
            continue  # never seen: not monitoring yet
        online = last >= cutoff
        if has_open and online:
            alert = alert_services.alert_condition_resolve(
                patient_id=patient_id,
                kind=KIND_DEVICE_OFFLINE,
                at=now,
                note="The device is sending readings again.",
            )
            client.delete(offline_key(patient_id))
        elif not has_open and not online:
            silent = (now - last).total_seconds()
            alert = alert_services.alert_raise(
                patient_id=patient_id,
                device_id=device_id,
                kind=KIND_DEVICE_OFFLINE,
                priority=LOW,
                message=f"Device offline: no reading from {serial} for {_duration(silent)}.",
                at=now,
            )
            client.set(offline_key(patient_id), alert.id)
        else:
            continue
        if alert is not None:
            changed.append(alert)
    return changed
