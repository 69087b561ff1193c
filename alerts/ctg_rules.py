"""CTG alarm rules, pure: what the CTG analysis of the last 30 minutes means for each CTG
alarm, and the episode state machine (hold time, one alert per episode, clear time).

The analysis itself is ``ctg.analysis`` (FIGO 2015). Nothing here touches the database or
Redis (``ctg_alarms.py`` loads the window, keeps the state and writes the alerts). Defaults,
sources and how to change them: docs/alarms.md, "CTG alarms".
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from django.conf import settings

from alerts.state import RuleState
from alerts.vocabulary import (
    KIND_CTG_PATHOLOGICAL,
    KIND_FHR_MATERNAL_COINCIDENCE,
    KIND_FHR_SIGNAL_LOSS,
    KIND_PROLONGED_DECELERATION,
    KIND_TACHYSYSTOLE,
    Priority,
)
from ctg.analysis import (
    PATHOLOGICAL,
    CtgResult,
    Series,
    duration_text,
    signal_loss_percent,
)
from ctg.maternal import MaternalCapture, MaternalParams, maternal_capture
from ctg.window import CTG_WINDOW

CTG_WINDOW_SECONDS = CTG_WINDOW.seconds  # FIGO averages contractions over 30 minutes
# Maternal capture is going on when the latest fetal signal of this many seconds is flagged.
CAPTURE_RECENT_SECONDS = 15
DEFAULT_TOLERANCE = MaternalParams().tolerance_bpm

PRIORITIES: dict[str, str] = {
    KIND_PROLONGED_DECELERATION: Priority.HIGH,
    KIND_CTG_PATHOLOGICAL: Priority.HIGH,
    KIND_TACHYSYSTOLE: Priority.MEDIUM,
    KIND_FHR_SIGNAL_LOSS: Priority.MEDIUM,
    KIND_FHR_MATERNAL_COINCIDENCE: Priority.MEDIUM,
}


@dataclass(frozen=True, slots=True)
class CtgLimits:
    """The CTG alarm settings of one patient. A null threshold switches that alarm off."""

    prolonged_deceleration_seconds: int | None = 180  # FIGO: prolonged is > 3 min
    pathological_hold_seconds: int | None = 60
    tachysystole_per_10_min: int | None = 5  # FIGO: > 5 per 10 min over 30 min
    tachysystole_hold_seconds: int = 0
    signal_loss_percent: int | None = 20
    signal_loss_minutes: int = 5
    signal_loss_hold_seconds: int = 30
    coincidence_bpm: int | None = 5
    coincidence_seconds: int = 60
    source: str = field(default="default", compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


CTG_LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CtgLimits) if f.name != "source")
# The fields that may be null (switch the alarm off); the others always have a value.
CTG_NULLABLE_FIELDS = frozenset(
    {
        "prolonged_deceleration_seconds",
        "pathological_hold_seconds",
        "tachysystole_per_10_min",
        "signal_loss_percent",
        "coincidence_bpm",
    }
)
CTG_LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "prolonged_deceleration_seconds": (60, 1800),
    "pathological_hold_seconds": (0, 3600),
    "tachysystole_per_10_min": (3, 10),
    "tachysystole_hold_seconds": (0, 3600),
    "signal_loss_percent": (1, 99),
    "signal_loss_minutes": (1, 30),
    "signal_loss_hold_seconds": (0, 3600),
    "coincidence_bpm": (1, 20),
    "coincidence_seconds": (10, 600),
}


def ctg_default_limits() -> CtgLimits:
    """The defaults, with any ``settings.ALARM_CTG_LIMITS`` override applied."""
    override = {k: v for k, v in settings.ALARM_CTG_LIMITS.items() if k in CTG_LIMIT_FIELDS}
    return replace(CtgLimits(), **override) if override else CtgLimits()


# --- Conditions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """Whether an alarm's condition holds at this evaluation, and the words for the alert."""

    active: bool
    message: str = ""


def ctg_conditions(
    *,
    result: CtgResult,
    fhr: Series,
    mhr: Series,
    monitored_since: float,
    limits: CtgLimits,
    maternal: MaternalCapture | None = None,
) -> dict[str, Condition]:
    """Each CTG alarm's condition at the end of the analysed window.

    ``result`` is the analysis of the window's monitored part (``ctg.window.ctg_read``),
    ``fhr`` and ``mhr`` its fetal and maternal heart rate on the same one-second grid
    (``ctg.analysis.per_second``; it starts and ends on whole seconds), ``monitored_since``
    the first second of the monitoring session (loss is not counted before it), ``maternal``
    the reading's maternal capture over the same seconds (``CtgReading.maternal``).
    """
    now = result.end
    conditions: dict[str, Condition] = {}

    if limits.prolonged_deceleration_seconds is not None:
        ongoing = [
            d
            for d in result.decelerations
            if d.ongoing and d.seconds > limits.prolonged_deceleration_seconds
        ]
        if ongoing:
            d = ongoing[-1]
            conditions[KIND_PROLONGED_DECELERATION] = Condition(
                True,
                f"Prolonged deceleration: fetal heart rate down to {d.nadir_bpm} bpm "
                f"({d.depth_bpm} bpm below the baseline) for {duration_text(d.seconds)}.",
            )
        else:
            conditions[KIND_PROLONGED_DECELERATION] = Condition(False)

    if limits.pathological_hold_seconds is not None:
        pathological = result.classification == PATHOLOGICAL
        conditions[KIND_CTG_PATHOLOGICAL] = Condition(
            pathological,
            "CTG pathological (FIGO 2015): " + " ".join(result.reasons) if pathological else "",
        )

    if limits.tachysystole_per_10_min is not None:
        rate = result.contractions_per_10_min
        window_full = result.end - result.start >= CTG_WINDOW_SECONDS
        active = rate is not None and window_full and rate > limits.tachysystole_per_10_min
        conditions[KIND_TACHYSYSTOLE] = Condition(
            active,
            f"Tachysystole: {rate:g} contractions per 10 minutes over the last 30 minutes "
            f"(more than {limits.tachysystole_per_10_min})."
            if active and rate is not None
            else "",
        )

    if limits.signal_loss_percent is not None:
        since = max(now - limits.signal_loss_minutes * 60, monitored_since)
        active, loss = False, 0.0
        if now - since >= 60:  # judge at least a minute of monitoring
            loss = signal_loss_percent(_grid_part(fhr, result.start, since, now))
            active = loss > limits.signal_loss_percent
        conditions[KIND_FHR_SIGNAL_LOSS] = Condition(
            active,
            f"Fetal heart rate signal lost for {loss:g} % of the last "
            f"{duration_text(now - since)} (more than {limits.signal_loss_percent} %)."
            if active
            else "",
        )

    if limits.coincidence_bpm is not None:
        conditions[KIND_FHR_MATERNAL_COINCIDENCE] = maternal_condition(
            fhr=fhr, mhr=mhr, maternal=maternal, limits=limits
        )
    return conditions


def maternal_condition(
    *, fhr: Series, mhr: Series, maternal: MaternalCapture | None, limits: CtgLimits
) -> Condition:
    """``fhr_maternal_coincidence``: the fetal channel has recorded the mother for more than
    ``coincidence_seconds`` up to its latest signal (``ctg.maternal``; ``maternal`` is the
    reading's capture over the same seconds as ``fhr`` and ``mhr``)."""
    capture = maternal
    if limits.coincidence_bpm is not None and limits.coincidence_bpm != DEFAULT_TOLERANCE:
        # The patient's own tolerance: the alarm judges with it (the analysis, which every
        # reader shares, keeps the default).
        params = replace(MaternalParams(), tolerance_bpm=limits.coincidence_bpm)
        capture = maternal_capture(fhr, mhr, params=params)
    elif capture is None:
        capture = maternal_capture(fhr, mhr)
    stretch = capture.ongoing(fhr, within=CAPTURE_RECENT_SECONDS)
    if stretch is None or stretch[0] <= limits.coincidence_seconds:
        return Condition(False)
    seconds, confirmed, excluded = stretch
    if excluded:
        return Condition(
            True,
            "The fetal heart rate channel has followed the maternal heart rate for "
            f"{duration_text(seconds)}: it is recording the mother, not the fetus (left out "
            "of the CTG analysis). Check the transducer position.",
        )
    if confirmed:
        return Condition(
            True,
            "The fetal heart rate channel has followed the maternal heart rate for "
            f"{duration_text(seconds)}: it is probably recording the mother. Check the "
            "transducer position and confirm the fetal heart rate (the trace is still read as "
            "the fetus's: a fetal bradycardia at the mother's rate looks the same).",
        )
    return Condition(
        True,
        "The fetal heart rate channel jumped to a maternal rate and has stayed there for "
        f"{duration_text(seconds)}, with no maternal heart rate to compare: it may be "
        "recording the mother. Check the transducer position and the maternal pulse.",
    )


def _grid_part(series: Series, origin: float, start: float, end: float) -> Series:
    """The seconds [start, end) of a one-second grid that begins at ``origin`` (whole seconds
    apart), as ``per_second`` gives them: None for seconds outside the grid."""
    lo, hi = round(start - origin), round(end - origin)
    assert lo == start - origin and hi == end - origin, "not on the grid's seconds"
    count = len(series)
    before: Series = [None] * max(0, min(hi, 0) - lo)
    after: Series = [None] * max(0, hi - max(lo, count))
    inside = series[min(max(lo, 0), count) : min(max(hi, 0), count)]
    return before + inside + after


def ctg_hold(kind: str, limits: CtgLimits) -> float:
    """How long a condition must last before it raises (the analysis already measures the
    durations FIGO names; these holds keep a single evaluation from raising)."""
    if kind == KIND_CTG_PATHOLOGICAL:
        return float(limits.pathological_hold_seconds or 0)
    if kind == KIND_TACHYSYSTOLE:
        return float(limits.tachysystole_hold_seconds)
    if kind == KIND_FHR_SIGNAL_LOSS:
        return float(limits.signal_loss_hold_seconds)
    return 0.0


# --- Episodes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Episode:
    """One alarm's episode: since when the condition holds, whether it raised, and since when
    it has been clear while the alert is open."""

    since: float | None = None
    raised: bool = False
    clear_since: float | None = None

    @property
    def is_idle(self) -> bool:
        return self.since is None and not self.raised


def episode_step(
    episode: Episode, *, active: bool, at: float, hold: float, clear: float
) -> tuple[Episode, str | None]:
    """Advance an episode to time ``at``; returns the new state and "raise", "resolve" or
    None. A raised episode raises nothing more until it has resolved (one alert each)."""
    if active:
        since = episode.since if episode.since is not None else at
        if episode.raised:
            return Episode(since, True, None), None
        if at - since >= hold:
            return Episode(since, True, None), "raise"
        return Episode(since, False, None), None
    if not episode.raised:
        return Episode(), None
    clear_since = episode.clear_since if episode.clear_since is not None else at
    if at - clear_since >= clear:
        return Episode(), "resolve"
    return Episode(episode.since, True, clear_since), None


@dataclass(slots=True)
class CtgState(RuleState):
    """A patient's CTG rule state: when it may be evaluated next and each alarm's episode.
    Bounded: one small record per patient whatever the reading rate."""

    next_at: float = 0.0
    episodes: dict[str, Episode] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CtgState:
        return cls(
            next_at=float(data.get("next_at", 0.0)),
            episodes={
                kind: Episode(e.get("since"), bool(e.get("raised")), e.get("clear_since"))
                for kind, e in (data.get("episodes") or {}).items()
            },
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "next_at": self.next_at,
            "episodes": {
                kind: {"since": e.since, "raised": e.raised, "clear_since": e.clear_since}
                for kind, e in self.episodes.items()
                if not e.is_idle
            },
        }
