"""Textbook traces (FIGO 2015) read as the product reads them: the 30-minute window with the
preceding trace (CTG_LOOKBACK_SECONDS) as context, and the window alone where the monitoring
began with it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from ctg.analysis import (
    LATE,
    NORMAL,
    PATHOLOGICAL,
    SUSPICIOUS,
    VARIABLE,
    CtgParams,
    CtgResult,
    ctg_analyse,
)
from ctg.params import CTG_LOOKBACK_SECONDS, CTG_WINDOW_SECONDS
from ctg.tests.traces import T0, Shape, accelerations, fhr_trace, ua_trace

WINDOW = CTG_WINDOW_SECONDS


def read(fhr, ua=(), *, end: float, context: bool = True) -> CtgResult:
    """The window ending ``end`` seconds after T0, with the preceding trace as the evaluator
    and the API pass it (or without any)."""
    start = max(0.0, end - WINDOW - CTG_LOOKBACK_SECONDS) if context else end - WINDOW
    return ctg_analyse(
        fhr=fhr, ua=ua, start=T0 + start, end=T0 + end, assess_from=T0 + end - WINDOW
    )


def prolonged(at: float, minutes: float = 6, to: float = 80) -> Shape:
    """A prolonged deceleration from 140 to ``to``: a 30 s fall, the plateau, a 30 s return."""
    return Shape(at, minutes * 60, to - 140, ramp_in=30, ramp_out=30)


def reactive(minutes: float, *events: Shape) -> list[Shape]:
    """Accelerations every 10 minutes from minute 2, none within a minute of ``events``."""
    return [
        a
        for a in accelerations(minutes, first=120)
        if not any(
            e.start - 60 < a.start + a.seconds and a.start < e.start + e.seconds + 60
            for e in events
        )
    ]


# --- A prolonged deceleration anywhere in the window ------------------------------------------


@pytest.mark.parametrize("context", [True, False], ids=["with-context", "window-alone"])
@pytest.mark.parametrize("minute", range(26))
def test_a_6_minute_prolonged_deceleration_anywhere_is_pathological(minute, context):
    # Baseline 140, normal variability, contractions every 4 minutes; 60 minutes of trace
    # before the window (or none), the deceleration at ``minute`` of the window.
    lead = CTG_LOOKBACK_SECONDS if context else 0
    total = (lead + WINDOW) / 60
    decel = prolonged(lead + minute * 60)
    fhr = fhr_trace(total, shapes=[decel, *reactive(total, decel)])
    ua = ua_trace(total, every=240)
    result = read(fhr, ua, end=lead + WINDOW, context=context)
    assert result.classification == PATHOLOGICAL, result.reasons
    assert any(r.startswith("A prolonged deceleration of") for r in result.reasons)
    [d] = [d for d in result.decelerations if d.prolonged]
    assert d.start - T0 == pytest.approx(decel.start, abs=10)
    seen = min(360, WINDOW - minute * 60)  # one that runs past the window's end: so far
    assert d.seconds == pytest.approx(seen, abs=15)
    assert d.ongoing == (minute * 60 + 360 > WINDOW)
    assert d.nadir_bpm == pytest.approx(80, abs=5)
    assert d.depth_bpm == pytest.approx(60, abs=5)  # against the baseline before it
    assert result.baseline_bpm == 140
    assert 80 not in result.baselines


def test_no_baseline_80_follows_the_recovery_in_sliding_windows():
    # The evaluator's view: a window ending every minute, from before the deceleration to
    # 15 minutes after the fetal heart rate is back at 140.
    decel = prolonged(4500)  # minute 75 of the trace
    total = 110
    fhr = fhr_trace(total, shapes=[decel, *reactive(total, decel)])
    ua = ua_trace(total, every=240)
    for end in range(4440, 5760, 60):
        result = read(fhr, ua, end=end)
        assert result.baseline_bpm == 140, (end, result.baselines, result.reasons)
        assert all(b == 140 for b in result.baselines), (end, result.baselines)
        if decel.start + 200 < end:  # more than 3 minutes into it (and below 100 bpm)
            assert result.classification == PATHOLOGICAL, (end, result.reasons)
            assert not any("Baseline 80" in r for r in result.reasons)
            # A long one is ongoing until the trace is back.
            [d] = [d for d in result.decelerations if d.prolonged]
            assert d.ongoing == (end < decel.start + decel.seconds - 15)


def test_a_12_minute_bradycardia_at_90_is_pathological():
    total = 90
    brady = Shape(4200, 720, -50, ramp_in=30, ramp_out=30)  # minutes 70-82
    fhr = fhr_trace(total, shapes=[brady, *reactive(total, brady)])
    ua = ua_trace(total, every=240)
    # At its 11th minute: 10 minutes at 90 are a baseline of 90 (FIGO: a bradycardia).
    during = read(fhr, ua, end=4860)
    assert during.classification == PATHOLOGICAL
    assert "Baseline 90 bpm (below 100)." in during.reasons
    # Eight minutes after the recovery: one prolonged deceleration of 12 minutes against
    # the baseline before it, and the baseline 140 again.
    result = read(fhr, ua, end=5400)
    assert result.classification == PATHOLOGICAL
    assert result.baseline_bpm == 140
    [d] = [d for d in result.decelerations if d.prolonged]
    assert d.nadir_bpm == pytest.approx(90, abs=5)
    assert d.seconds == pytest.approx(720, abs=30)
    assert any(r.startswith("A prolonged deceleration of 1") for r in result.reasons)


# --- Decelerations with contractions ----------------------------------------------------------


def late_decelerations(minutes: float, every: float = 180) -> list[Shape]:
    """A late deceleration with every contraction (contractions at 60 + k * every, 60 s long,
    acme at 30 s): starting 35 s after the contraction's onset, 25 bpm deep, gradual (55 s
    from its onset to its nadir)."""
    starts = range(60, int(minutes * 60) - 150, int(every))
    return [Shape(s + 35, 110, -25, ramp_in=55, ramp_out=45) for s in starts]


def test_late_decelerations_with_every_contraction_for_40_minutes_are_pathological():
    fhr = fhr_trace(40, shapes=late_decelerations(40))
    result = read(fhr, ua_trace(40, every=180), end=2400)
    late = [d for d in result.decelerations if d.kind == LATE]
    assert len(late) >= 9
    assert all(d.hypoxic == ("late",) for d in late)
    assert result.pattern_seconds > 30 * 60
    assert result.classification == PATHOLOGICAL
    assert any("Repetitive late or prolonged decelerations" in r for r in result.reasons)


def test_late_decelerations_for_less_than_30_minutes_are_suspicious():
    # The same pattern for the last 20 minutes only, variability normal.
    shapes = [s for s in late_decelerations(40) if s.start > 1200]
    shapes += accelerations(40, first=300, every=1e9)
    result = read(fhr_trace(40, shapes=shapes), ua_trace(40, every=180), end=2400)
    assert 15 * 60 < result.pattern_seconds < 30 * 60
    assert result.classification == SUSPICIOUS
    assert "Repetitive decelerations." in result.reasons


def variable_decelerations(minutes: float, *, seconds: float, depth: float) -> list[Shape]:
    """A variable deceleration with every contraction (every 3 minutes): a fall within 10 s,
    the nadir held for ``seconds`` - 20 s, a return within 10 s."""
    starts = range(70, int(minutes * 60) - 120, 180)
    return [Shape(s, seconds, -depth, ramp_in=10, ramp_out=10) for s in starts]


def test_variable_decelerations_without_hypoxic_features_are_suspicious_not_pathological():
    # V-shaped, 30 s, 30 bpm deep, with every contraction for 40 minutes.
    shapes = variable_decelerations(40, seconds=30, depth=30) + accelerations(40)
    result = read(fhr_trace(40, shapes=shapes), ua_trace(40, every=180), end=2400)
    decelerations = [d for d in result.decelerations if d.end > result.start]
    assert len(decelerations) >= 9
    assert all(d.kind == VARIABLE and d.hypoxic == () for d in decelerations)
    assert result.classification == SUSPICIOUS
    assert result.reasons == ["Repetitive decelerations."]


def test_variable_decelerations_with_hypoxic_features_for_40_minutes_are_pathological():
    # 70 s, 65 bpm deep, a U-shaped bottom of 50 s: with every contraction for 40 minutes.
    shapes = variable_decelerations(40, seconds=70, depth=65) + accelerations(40)
    result = read(fhr_trace(40, shapes=shapes), ua_trace(40, every=180), end=2400)
    decelerations = [d for d in result.decelerations if d.end > result.start]
    assert len(decelerations) >= 9
    for d in decelerations:
        assert d.kind == VARIABLE
        assert set(d.hypoxic) == {"U-shaped", "deep", "long"}
    assert result.classification == PATHOLOGICAL


def test_recurrent_deep_decelerations_the_toco_does_not_time_are_suspicious():
    # Four V-shaped decelerations of 40 bpm for 30 s (deeper than an early one can be, no
    # hypoxic feature) in 30 minutes, with no contraction recorded (the toco off), so their
    # relation to the contractions cannot be told: not a normal trace.
    starts = (300, 700, 1100, 1500)
    decelerations = [Shape(s, 30, -40, ramp_in=10, ramp_out=10) for s in starts]
    shapes = decelerations + [
        a for a in accelerations(30, first=120) if all(abs(a.start - s) > 120 for s in starts)
    ]
    fhr = fhr_trace(30, shapes=shapes)
    result = read(fhr, end=WINDOW, context=False)
    assert [d.kind for d in result.decelerations] == [VARIABLE] * 4
    assert all(d.hypoxic == () for d in result.decelerations)
    assert result.classification == SUSPICIOUS
    assert result.reasons == ["Recurrent decelerations: 4 deeper than 30 bpm."]
    # Two of them are sporadic (normal), as are four shallow ones (20 bpm).
    two = fhr_trace(30, shapes=[*decelerations[:2], *shapes[4:]])
    assert read(two, end=WINDOW, context=False).classification == NORMAL
    shallow = [Shape(s, 30, -20, ramp_in=10, ramp_out=10) for s in starts]
    fhr_shallow = fhr_trace(30, shapes=[*shallow, *shapes[4:]])
    assert read(fhr_shallow, end=WINDOW, context=False).classification == NORMAL
    # The rule can be switched off (recurrent_decelerations=0): normal then.
    off = ctg_analyse(
        fhr=fhr,
        start=T0,
        end=T0 + WINDOW,
        params=replace(CtgParams(), recurrent_decelerations=0),
    )
    assert off.classification == NORMAL, off.reasons


def test_a_tachycardia_is_pathological_with_decelerations_with_hypoxic_features_only():
    # A baseline of 170 with a variable deceleration with every contraction (every 3
    # minutes) for 40 minutes: V-shaped, 30 s, 30 bpm deep (no hypoxic feature) is suspicious.
    typical = variable_decelerations(40, seconds=30, depth=30) + accelerations(40)
    ua = ua_trace(40, every=180)
    result = read(fhr_trace(40, baseline=170, shapes=typical), ua, end=2400)
    assert result.baseline_bpm == 170
    assert result.pattern_seconds == 0
    assert result.classification == SUSPICIOUS, result.reasons
    assert "Repetitive decelerations." in result.reasons
    # The last 12 minutes of them deep, long and U-shaped: a pattern of 12 minutes with a
    # tachycardia is pathological (FIGO 2015's evolving hypoxia), short of the 20 minutes
    # it needs otherwise.
    hypoxic = [
        Shape(d.start, 70, -65, ramp_in=10, ramp_out=10) if d.start >= 1680 else d for d in typical
    ]
    result = read(fhr_trace(40, baseline=170, shapes=hypoxic), ua, end=2400)
    assert 10 * 60 < result.pattern_seconds < 20 * 60
    assert result.classification == PATHOLOGICAL, result.reasons
    assert result.reasons[0] == (
        "Tachycardia (baseline 170 bpm) with repetitive decelerations with hypoxic features."
    )


def test_a_fall_seen_for_8_minutes_after_a_dropout_is_a_deceleration_not_a_baseline():
    # Baseline 140 for an hour, the signal lost for 2 minutes, then the rate at 90 for 8
    # minutes: 10 minutes away from the baseline, but only 8 of them seen. A baseline change
    # needs 10 minutes read at the new level (FIGO: 10 minutes or more); until then the fall
    # is a prolonged deceleration measured against the baseline before it.
    shapes = [Shape(3720, 480, -50, ramp_in=0, ramp_out=0)]
    fhr = fhr_trace(70, shapes=[*shapes, *reactive(60)], lost=[(3600, 3720)])
    result = read(fhr, ua_trace(70, every=240), end=4200)
    assert result.baseline_bpm == 140, result.reasons
    [d] = [d for d in result.decelerations if d.prolonged]
    assert d.ongoing and d.nadir_bpm < 100
    assert result.classification == PATHOLOGICAL
    assert not any(r.startswith("Baseline") for r in result.reasons), result.reasons


# --- Variability and baseline -----------------------------------------------------------------


def test_reduced_variability_for_60_minutes_is_pathological():
    fhr = fhr_trace(90, amplitude=lambda t: 4 if t < 1800 else 1)  # reduced from minute 30
    result = read(fhr, end=5400)
    assert result.reduced_variability_minutes == pytest.approx(60, abs=1)
    assert result.classification == PATHOLOGICAL
    assert any("Reduced variability" in r and "60 minutes" in r for r in result.reasons)
    # 40 minutes of it: suspicious (not yet more than 50).
    result = read(fhr, end=4200)
    assert 38 <= result.reduced_variability_minutes <= 41
    assert result.classification == SUSPICIOUS


def test_tachycardia_at_170_for_15_minutes_is_suspicious_with_baseline_170():
    # 140 for an hour, then a rise to 170 over 30 s, held for 15 minutes: a new baseline
    # once stable for 10 minutes.
    def baseline(t: float) -> float:
        return 140 + 30 * min(1.0, max(0.0, (t - 4500) / 30))

    fhr = fhr_trace(90, baseline=baseline, shapes=accelerations(90, first=300, every=900))
    result = read(fhr, end=5400)
    assert result.baseline_bpm == 170
    assert result.classification == SUSPICIOUS
    assert "Baseline 170 bpm (above 160)." in result.reasons
    # Five minutes into it the baseline is still the one before: an acceleration is not a
    # baseline, and a rise is not a baseline change before 10 minutes.
    assert read(fhr, end=4800).baseline_bpm == 140


# --- Artefacts --------------------------------------------------------------------------------


def halving_and_doubling(samples):
    """Every 4 minutes the monitor halves the rate for 20 s, and doubles it for 10 s two
    minutes later (the ingest refuses doubled values above 240: 2 x 140 is 280)."""
    out = []
    for t, v in samples:
        x = (t - T0) % 240
        if 100 <= x < 120:
            out.append((t, v / 2))
        elif 220 <= x < 230:
            if 2 * v <= 240:
                out.append((t, 2 * v))
        else:
            out.append((t, v))
    return out


@pytest.mark.parametrize("baseline", [140, 115])
def test_halving_and_doubling_are_excluded_not_read_as_events(baseline):
    fhr = halving_and_doubling(fhr_trace(90, baseline=baseline, shapes=accelerations(90)))
    result = read(fhr, ua_trace(90, every=240), end=5400)
    assert result.decelerations == []
    assert all(a.peak_bpm < baseline + 40 for a in result.accelerations)
    assert result.baseline_bpm == baseline
    # 20 s halved (and 10 s doubled where the ingest keeps it) every 4 minutes, and the 3 s
    # after each that confirm the return.
    artefact_seconds = 20 + 3 + (10 + 3 if 2 * baseline <= 240 else 0)
    assert result.artefact_percent == pytest.approx(100 * artefact_seconds / 240, abs=1.5)
    assert result.classification == NORMAL


def test_isolated_spikes_and_jumps_are_excluded():
    spikes = {1000 + 37 * k for k in range(40)}

    def spiky(samples):
        return [(t, 60.0 if math.floor(t - T0) in spikes else v) for t, v in samples]

    fhr = spiky(fhr_trace(90, shapes=accelerations(90)))
    result = read(fhr, end=5400)
    assert result.decelerations == []
    assert result.classification == NORMAL
