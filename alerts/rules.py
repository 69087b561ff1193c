"""Alarm rules, pure: bands, their defaults, and the state machine that one reading advances.

Every band is a condition "rate at or below / at or above a threshold" with an IEC 60601-1-8
priority and a hold time: the condition must last that long (measured on the readings' own
``recorded_at``) before anything is raised, so transients raise nothing. Bands are nested (a
rate in the high band is also in the medium band), so an alert is raised at the highest
priority whose condition has lasted its hold time, and escalates while the episode worsens.

Nothing here touches the database or Redis (``state.py`` keeps the state, ``batch_evaluation.py``
runs the rules on stored readings). Defaults, sources and how to change them: docs/alarms.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from django.conf import settings

from alerts.state import RuleState
from alerts.vocabulary import (
    KIND_BRADYCARDIA,
    KIND_DEVICE_OFFLINE,
    KIND_FETAL_BRADYCARDIA,
    KIND_FETAL_TACHYCARDIA,
    KIND_TACHYCARDIA,
    PRIORITY_OF_RANK,
)
from ctg.analysis import duration_text
from monitoring.models import Metric

# Band levels are priority ranks: 1 low, 2 medium, 3 high.
PRIORITY = PRIORITY_OF_RANK
BRADY, TACHY = "brady", "tachy"

# The sources each rule applies to: a metric is one measurement source. The heart-rate bands
# (bradycardia, tachycardia) apply to ``heart_rate`` (the ECG rate: MDC 147842, LOINC 8867-4)
# and the fetal bands to ``fetal_heart_rate``; ``pulse_rate`` (an oximeter's or other non-ECG
# pulse: MDC 149530, 149514) is stored, charted and served but raises no alarm, so that a
# pulse that lags or drops out beside a good ECG neither doubles nor cancels an ECG alarm.
KINDS: dict[tuple[str, str], str] = {
    (Metric.HEART_RATE, BRADY): KIND_BRADYCARDIA,
    (Metric.HEART_RATE, TACHY): KIND_TACHYCARDIA,
    (Metric.FETAL_HEART_RATE, BRADY): KIND_FETAL_BRADYCARDIA,
    (Metric.FETAL_HEART_RATE, TACHY): KIND_FETAL_TACHYCARDIA,
}
KIND_LABELS = {
    KIND_BRADYCARDIA: "Bradycardia",
    KIND_TACHYCARDIA: "Tachycardia",
    KIND_FETAL_BRADYCARDIA: "Fetal bradycardia",
    KIND_FETAL_TACHYCARDIA: "Fetal tachycardia",
    KIND_DEVICE_OFFLINE: "Device offline",
}
KIND_METRIC = {kind: metric for (metric, _side), kind in KINDS.items()}
METRIC_LABELS: dict[str, str] = {
    Metric.HEART_RATE: "heart rate",
    Metric.FETAL_HEART_RATE: "fetal heart rate",
}

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
PROFILE_METRICS: dict[str, tuple[str, ...]] = {
    "adult": (Metric.HEART_RATE,),
    "obstetric": (Metric.HEART_RATE, Metric.FETAL_HEART_RATE),
}


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
        value: int | None = getattr(self, f"{side}_{PRIORITY[level]}")
        return value

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Defaults by monitoring profile and metric (sources in docs/alarms.md):
# - adult heart rate: NEWS2 (RCP 2017) pulse bands: <=40 score 3, 41-50 score 1, 91-110
#   score 1, 111-130 score 2, >=131 score 3; mapped to high / medium / low / medium / high.
# - obstetric maternal heart rate: MEWT (Shields et al. 2016): 111-130 medium, <50 or >130 high.
# - fetal heart rate: FIGO 2015: baseline <110 or >160 for 10 minutes medium, <100 for
#   3 minutes high (the hold time stands in for "baseline": the rate must stay in the band).
Triple = tuple[int | None, int | None, int | None]


def bands(
    metric: str,
    *,
    brady: Triple = (None, None, None),
    tachy: Triple = (None, None, None),
    hold: tuple[int, int, int] = (10, 20, 30),
) -> Limits:
    """Limits from three triples: ``brady`` thresholds (high, medium, low priority: at or
    below), ``tachy`` thresholds (low, medium, high priority: at or above), and the ``hold``
    seconds of the high, medium and low bands. ``None`` switches a band off."""
    brady_high, brady_medium, brady_low = brady
    tachy_low, tachy_medium, tachy_high = tachy
    hold_high, hold_medium, hold_low = hold
    return Limits(
        metric=metric,
        brady_high=brady_high,
        brady_medium=brady_medium,
        brady_low=brady_low,
        tachy_low=tachy_low,
        tachy_medium=tachy_medium,
        tachy_high=tachy_high,
        hold_high_seconds=hold_high,
        hold_medium_seconds=hold_medium,
        hold_low_seconds=hold_low,
    )


DEFAULT_LIMITS: dict[str, Limits] = {
    "adult:heart_rate": bands(Metric.HEART_RATE, brady=(40, 50, None), tachy=(91, 111, 131)),
    "obstetric:heart_rate": bands(
        Metric.HEART_RATE, brady=(49, None, None), tachy=(None, 111, 131)
    ),
    "obstetric:fetal_heart_rate": bands(
        Metric.FETAL_HEART_RATE,
        brady=(99, 109, None),
        tachy=(None, 161, None),
        hold=(180, 600, 600),
    ),
}


def default_limits(*, profile: str, metric: str) -> Limits | None:
    """The profile's default bands, with any ``settings.ALARM_LIMITS`` override applied."""
    key = f"{profile}:{metric}"
    base = DEFAULT_LIMITS.get(key)
    if base is None:
        return None
    override = settings.ALARM_LIMITS.get(key)
    if override:
        allowed = set(THRESHOLD_FIELDS) | set(HOLD_FIELDS)
        base = replace(base, **{k: v for k, v in override.items() if k in allowed})
    return base


@dataclass(slots=True)
class BandState(RuleState):
    """Where one patient's metric is: the abnormal side, when each nested band condition
    started (epoch seconds by priority level), the level already raised, and since when the
    rate has been back in range while an alert is still open."""

    side: str | None = None
    starts: dict[int, float] = field(default_factory=dict)
    raised: int = 0
    clear_since: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BandState:
        return cls(
            side=data.get("side"),
            starts={int(k): float(v) for k, v in (data.get("starts") or {}).items()},
            raised=int(data.get("raised", 0)),
            clear_since=data.get("clear_since"),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "starts": {str(k): v for k, v in self.starts.items()},
            "raised": self.raised,
            "clear_since": self.clear_since,
        }

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


def alarm_message(
    *, kind: str, limits: Limits, side: str, level: int, bpm: int, held: float
) -> str:
    threshold = limits.threshold(side, level)
    relation = "at or below" if side == BRADY else "at or above"
    return (
        f"{KIND_LABELS.get(kind, kind)}: {METRIC_LABELS.get(limits.metric, limits.metric)} "
        f"{bpm} bpm ({relation} {threshold}) for {duration_text(held)}."
    )
