"""The CTG analysis on synthetic traces whose true answer is known by construction."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ctg.analysis import (
    EARLY,
    INSUFFICIENT,
    LATE,
    NORMAL,
    PATHOLOGICAL,
    SUSPICIOUS,
    VARIABLE,
    CtgParams,
    _runs,
    ctg_analyse,
    maternal_coincidence_seconds,
    per_second,
    signal_loss_percent,
)
from ctg.tests.traces import T0, Shape, accelerations, contraction_starts, fhr_trace, ua_trace


def analyse(minutes: float, fhr, ua=(), *, start: float = 0, end: float | None = None):
    return ctg_analyse(
        fhr=fhr,
        ua=ua,
        start=T0 + start,
        end=T0 + (minutes * 60 if end is None else end),
    )


# --- Grid, loss -------------------------------------------------------------------------------


def test_per_second_means_and_gaps():
    series = per_second([(T0 + 0.0, 100), (T0 + 0.5, 110), (T0 + 2.25, 120)], start=T0, end=T0 + 4)
    assert series == [105, None, 120, None]
    assert signal_loss_percent(series) == 50.0
    assert signal_loss_percent([]) == 100.0


# --- A normal trace ---------------------------------------------------------------------------


def test_normal_trace_has_its_baseline_bandwidth_and_no_events():
    result = analyse(40, fhr_trace(40, baseline=140, amplitude=4, shapes=accelerations(40)))
    assert result.baseline_bpm == 140
    assert result.variability_bpm == pytest.approx(8, abs=0.6)
    assert len(result.accelerations) == 4 and result.decelerations == []
    assert result.signal_loss_percent == 0.0
    assert result.classification == NORMAL
    assert result.reasons and "Baseline 140 bpm" in result.reasons[0]
    assert result.baselines == [140, 140, 140, 140]


@pytest.mark.parametrize(("true", "rounded"), [(142.0, 140), (143.0, 145), (131.0, 130)])
def test_baseline_is_rounded_to_5_bpm(true, rounded):
    assert analyse(20, fhr_trace(20, baseline=true, amplitude=3)).baseline_bpm == rounded


def test_baseline_excludes_accelerations_and_decelerations():
    shapes = [Shape(120 * k, 40, +30) for k in range(1, 5)] + [Shape(700, 60, -35)]
    result = analyse(20, fhr_trace(20, baseline=135, shapes=shapes))
    assert result.baseline_bpm == 135


# --- Accelerations ----------------------------------------------------------------------------


def test_accelerations_are_counted_with_their_extent_and_peak():
    shapes = [Shape(s, 30, +25) for s in (200, 500, 900)]
    result = analyse(20, fhr_trace(20, shapes=shapes, amplitude=3))
    assert len(result.accelerations) == 3
    for acceleration, shape in zip(result.accelerations, shapes, strict=True):
        assert acceleration.start - T0 == pytest.approx(shape.start, abs=1)
        assert acceleration.end - T0 == pytest.approx(shape.start + shape.seconds, abs=1)
        assert acceleration.peak_bpm == pytest.approx(165, abs=3)
    assert result.decelerations == []


def test_short_or_small_rises_are_not_accelerations():
    shapes = [Shape(200, 14, +25), Shape(500, 60, +12)]
    assert analyse(20, fhr_trace(20, shapes=shapes, amplitude=2)).accelerations == []


# --- Decelerations ----------------------------------------------------------------------------


def test_a_deceleration_has_start_end_nadir_and_depth():
    result = analyse(20, fhr_trace(20, shapes=[Shape(600, 60, -30)], amplitude=2))
    [d] = result.decelerations
    assert d.start - T0 == pytest.approx(600, abs=1) and d.end - T0 == pytest.approx(660, abs=1)
    assert d.nadir_bpm == pytest.approx(108, abs=2)
    assert d.depth_bpm == pytest.approx(32, abs=2)
    assert d.prolonged is False and d.ongoing is False


def test_a_deceleration_of_more_than_3_minutes_is_prolonged_and_suspicious():
    result = analyse(30, fhr_trace(30, shapes=[Shape(900, 245, -40)], amplitude=3))
    [d] = result.decelerations
    assert d.prolonged and d.seconds == pytest.approx(243, abs=2) and d.kind is None
    assert result.classification == SUSPICIOUS
    assert any("prolonged deceleration of 4 min" in r for r in result.reasons)


def test_one_prolonged_deceleration_of_more_than_5_minutes_is_pathological():
    result = analyse(30, fhr_trace(30, shapes=[Shape(900, 365, -40)], amplitude=3))
    assert result.classification == PATHOLOGICAL
    assert any("prolonged deceleration of 6 min" in r for r in result.reasons)


def test_a_deceleration_crossing_the_window_end_is_ongoing_and_cut_at_the_edge():
    trace = fhr_trace(20, shapes=[Shape(1140, 200, -40)], amplitude=2)  # runs past 20 min
    result = analyse(20, trace)
    [d] = result.decelerations
    assert d.ongoing and d.end == T0 + 1200
    assert d.start - T0 == pytest.approx(1140, abs=1)
    assert not d.prolonged  # 60 s seen so far


def test_a_deceleration_crossing_the_window_start_starts_at_the_edge():
    trace = fhr_trace(25, shapes=[Shape(240, 120, -40)], amplitude=2)
    result = analyse(25, trace, start=300)  # the window opens in the middle of it
    [d] = result.decelerations
    assert d.start == T0 + 300
    assert d.end - T0 == pytest.approx(360, abs=1)


def test_v_shaped_deceleration_is_variable():
    contractions = ua_trace(20, every=180)
    shape = Shape(600, 25, -40, ramp_in=10, ramp_out=15)
    result = analyse(20, fhr_trace(20, shapes=[shape], amplitude=2), contractions)
    [d] = result.decelerations
    assert d.kind == VARIABLE


def test_late_and_early_decelerations_against_contractions():
    # Contractions start at 60 + 180 k; each lasts 60 s with its acme 30 s in.
    starts = contraction_starts(20, every=180)
    late = Shape(starts[3] + 35, 110, -25, ramp_in=55, ramp_out=45)  # nadir well after acme
    early = Shape(starts[5] - 25, 100, -20, ramp_in=55, ramp_out=45)  # nadir at the acme
    result = analyse(
        20, fhr_trace(20, shapes=[late, early], amplitude=1.5), ua_trace(20, every=180)
    )
    assert [d.kind for d in result.decelerations] == [LATE, EARLY], result.decelerations


def test_gradual_deceleration_without_uterine_activity_is_read_as_late():
    # FIGO 2015: without an adequate contraction signal, a gradual onset and return (30 s or
    # more each) tells a late deceleration.
    shape = Shape(600, 110, -25, ramp_in=55, ramp_out=45)
    [d] = analyse(20, fhr_trace(20, shapes=[shape], amplitude=1.5)).decelerations
    assert d.kind == LATE and d.hypoxic == ("late",)
    quick_return = Shape(600, 70, -25, ramp_in=55, ramp_out=10)
    [d] = analyse(20, fhr_trace(20, shapes=[quick_return], amplitude=1.5)).decelerations
    assert d.kind is None and d.hypoxic == ()


def test_an_untyped_deceleration_keeps_its_hypoxic_features():
    # A gradual onset but a quick return, no contraction told: neither late nor variable; a
    # fall of 70 bpm is still a sign of hypoxia, and an untyped one not read as harmless.
    deep = Shape(600, 70, -70, ramp_in=55, ramp_out=10)
    [d] = analyse(20, fhr_trace(20, shapes=[deep], amplitude=1.5)).decelerations
    assert d.kind is None and "deep" in d.hypoxic, d


def test_repetitive_late_decelerations_for_over_30_minutes_are_pathological():
    starts = contraction_starts(40, every=180)
    shapes = [Shape(s + 35, 110, -25, ramp_in=55, ramp_out=45) for s in starts if s + 135 < 2400]
    result = analyse(40, fhr_trace(40, shapes=shapes, amplitude=2), ua_trace(40, every=180))
    assert sum(d.kind == LATE for d in result.decelerations) >= 10
    assert result.classification == PATHOLOGICAL
    assert any("Repetitive late or prolonged decelerations" in r for r in result.reasons)


# --- Variability ------------------------------------------------------------------------------


def test_reduced_variability_over_50_minutes_is_pathological():
    result = analyse(60, fhr_trace(60, amplitude=1))
    assert result.variability_bpm == pytest.approx(2, abs=0.5)
    assert result.reduced_variability_minutes == 60
    assert result.classification == PATHOLOGICAL
    assert any("Reduced variability" in r for r in result.reasons)


def test_reduced_variability_for_a_shorter_time_is_suspicious():
    result = analyse(30, fhr_trace(30, amplitude=1, shapes=accelerations(30)))
    assert result.classification == SUSPICIOUS
    assert len(result.reasons) == 1 and result.reasons[0].startswith("Reduced variability (")


def test_increased_variability_over_30_minutes_is_pathological():
    result = analyse(40, fhr_trace(40, amplitude=14))
    assert result.variability_bpm == pytest.approx(28, abs=1)
    assert result.increased_variability_minutes > 30
    assert result.classification == PATHOLOGICAL


# --- Baseline classes -------------------------------------------------------------------------


def test_baseline_below_100_is_pathological_and_above_160_suspicious():
    low = analyse(20, fhr_trace(20, baseline=95))
    assert (low.baseline_bpm, low.classification) == (95, PATHOLOGICAL)
    assert low.reasons[0] == "Baseline 95 bpm (below 100)."
    high = analyse(20, fhr_trace(20, baseline=170))
    assert (high.baseline_bpm, high.classification) == (170, SUSPICIOUS)
    assert high.reasons[0] == "Baseline 170 bpm (above 160)."


# --- Contractions -----------------------------------------------------------------------------


def test_contractions_and_their_frequency():
    result = analyse(30, fhr_trace(30, shapes=accelerations(30)), ua_trace(30, every=180, first=60))
    starts = contraction_starts(30, every=180, first=60)
    assert len(result.contractions) == len(starts) == 10
    for contraction, start in zip(result.contractions, starts, strict=True):
        assert contraction.peak_at - T0 == pytest.approx(start + 30, abs=1)
        assert contraction.peak == 70
        assert contraction.start - T0 == pytest.approx(start + 6, abs=2)
    assert result.contractions_per_10_min == pytest.approx(3.3, abs=0.05)
    assert result.tachysystole is False
    assert result.classification == NORMAL


def test_more_than_5_contractions_per_10_minutes_is_tachysystole():
    result = analyse(30, fhr_trace(30), ua_trace(30, every=90, first=30, seconds=55))
    assert result.contractions_per_10_min == pytest.approx(6.7, abs=0.05)
    assert result.tachysystole
    assert any("Tachysystole" in r for r in result.reasons)


def test_without_uterine_activity_the_frequency_is_unknown():
    result = analyse(30, fhr_trace(30))
    assert result.contractions == [] and result.contractions_per_10_min is None


def test_no_acceleration_for_40_minutes_is_not_reassuring():
    # Over the preceding trace too: 60 minutes without one, the window the last 30.
    trace = fhr_trace(60)
    result = ctg_analyse(fhr=trace, start=T0, end=T0 + 3600, assess_from=T0 + 1800)
    assert result.minutes_without_acceleration == 60
    assert result.classification == SUSPICIOUS
    assert result.reasons == ["No acceleration for 60 minutes."]
    # One 25 minutes before the window's end: reassuring.
    reactive = fhr_trace(60, shapes=[Shape(2100, 40, 25, ramp_in=8, ramp_out=8)])
    result = ctg_analyse(fhr=reactive, start=T0, end=T0 + 3600, assess_from=T0 + 1800)
    assert result.classification == NORMAL


# --- Signal loss and short windows ------------------------------------------------------------


def test_signal_loss_share_is_measured():
    result = analyse(30, fhr_trace(30, lost=[(600, 960)], shapes=accelerations(30)))
    assert result.signal_loss_percent == 20.0
    assert result.baseline_bpm == 140 and result.classification == NORMAL


def test_a_trace_entirely_lost_is_insufficient_signal():
    result = analyse(30, [])
    assert result.signal_loss_percent == 100.0
    assert result.baseline_bpm is None and result.variability_bpm is None
    assert result.accelerations == [] and result.decelerations == []
    assert result.classification == INSUFFICIENT
    assert result.reasons == ["The fetal heart rate is missing for 100 % of the window."]


def test_mostly_lost_trace_is_insufficient_signal():
    result = analyse(30, fhr_trace(30, lost=[(0, 1200)]))
    assert result.signal_loss_percent == pytest.approx(66.7, abs=0.1)
    assert result.classification == INSUFFICIENT


def test_poor_signal_never_hides_a_pathological_finding():
    # 16 of 30 minutes lost: a baseline of 95 read over the other 14 is still pathological ...
    low = analyse(30, fhr_trace(30, baseline=95, lost=[(0, 960)]))
    assert low.signal_loss_percent == pytest.approx(53.3, abs=0.1)
    assert low.classification == PATHOLOGICAL
    assert low.reasons[0] == "Baseline 95 bpm (below 100)."
    assert low.reasons[-1] == "The fetal heart rate is missing for 53.3 % of the window."
    # ... while the same loss over a normal trace is never read as reassuring ...
    normal = analyse(30, fhr_trace(30, lost=[(0, 960)], shapes=accelerations(30)))
    assert normal.classification == INSUFFICIENT
    # ... and less than 10 readable minutes are not read at all.
    short = analyse(30, fhr_trace(30, baseline=95, lost=[(0, 1260)]))
    assert short.classification == INSUFFICIENT
    assert short.reasons == ["The fetal heart rate is missing for 70 % of the window."]


def test_a_window_shorter_than_10_minutes_has_no_baseline():
    result = analyse(8, fhr_trace(8, shapes=[Shape(120, 60, -30)]), ua_trace(8, every=180))
    assert result.baseline_bpm is None and result.decelerations == []
    assert result.contractions_per_10_min is None
    assert len(result.contractions) == 3  # contractions need no fetal baseline
    assert result.signal_loss_percent == 0.0
    assert result.classification == INSUFFICIENT
    assert "shorter than 10 minutes" in result.reasons[0]


def test_a_monitor_just_started_has_no_baseline_and_no_events_but_its_contractions():
    # The last 100 s of a 30-minute window, with a deep deceleration: no period has 2 minutes
    # of signal, so there is no baseline to measure the deceleration against.
    trace = fhr_trace(30, shapes=[Shape(1720, 60, -40)], lost=[(0, 1700)])
    result = analyse(30, trace, ua_trace(30, every=180))
    assert result.baselines == [None, None, None] and result.baseline_bpm is None
    assert result.decelerations == [] and result.accelerations == []
    assert len(result.contractions) == 10
    assert result.signal_loss_percent == pytest.approx(94.4, abs=0.1)
    assert result.classification == INSUFFICIENT


# --- Maternal coincidence ---------------------------------------------------------------------


def test_fetal_channel_following_the_maternal_rate_is_measured_up_to_now():
    maternal = fhr_trace(10, baseline=85, amplitude=3, period=30)
    # The fetal channel shows its own rate, then the mother's (+2 bpm) for the last 90 s.
    fetal = [(t, v) for t, v in fhr_trace(10) if t < T0 + 510] + [
        (t, v + 2) for t, v in maternal if t >= T0 + 510
    ]
    seconds = maternal_coincidence_seconds(fhr=fetal, mhr=maternal, start=T0, end=T0 + 600)
    assert seconds == pytest.approx(90, abs=1)
    earlier = maternal_coincidence_seconds(fhr=fetal, mhr=maternal, start=T0, end=T0 + 500)
    assert earlier == 0.0


def test_coincidence_tolerates_short_gaps_but_not_an_end_in_the_past():
    maternal = fhr_trace(5, baseline=90, amplitude=2)
    fetal = [(t, v + 1) for t, v in maternal if not (T0 + 200 <= t < T0 + 203)]
    assert maternal_coincidence_seconds(
        fhr=fetal, mhr=maternal, start=T0, end=T0 + 300
    ) == pytest.approx(300)
    stopped = [(t, v) for t, v in fetal if t < T0 + 240]
    assert maternal_coincidence_seconds(fhr=stopped, mhr=maternal, start=T0, end=T0 + 300) == 0


def test_a_dropout_inside_a_deceleration_does_not_split_it():
    trace = fhr_trace(30, shapes=[Shape(900, 240, -40)], lost=[(1000, 1020)], amplitude=3)
    [d] = analyse(30, trace).decelerations
    assert d.prolonged and d.seconds == pytest.approx(240, abs=2)


# --- Event stretches on the grid (the loop the evaluator runs most) ---------------------------


def _stretches(deviation, **overrides):
    params = {
        "threshold": 15,
        "edge": 5,
        "bridge": 2,
        "core_min": 1,
        "min_seconds": 0,
        "loss_bridge": 3,
        **overrides,
    }
    return [(r.start, r.end, r.extreme) for r in _runs(deviation, **params)]


def test_a_stretch_bridges_short_gaps_of_signal_and_of_loss_and_no_longer_ones():
    # 2 s of signal near the baseline and 3 s without signal are bridged: one stretch.
    bridged = [0, 20, 20, 0, 0, 20, None, None, None, 20, 0]
    assert _stretches(bridged) == [(1, 10, 1)]
    # 3 s of signal, or 4 s without, split it (the stretches then widen to their edges).
    assert _stretches([0, 20, 0, 0, 0, 20, 0]) == [(1, 2, 1), (5, 6, 5)]
    assert _stretches([0, 20, None, None, None, None, 20, 0]) == [(1, 2, 1), (6, 7, 6)]
    # Negative bridges join nothing, not even the next second: two cores of 1 s each, too
    # short for a core_min of 2 s, where a core of 2 s is kept.
    assert _stretches([0, 20, 20, 0], bridge=-1, core_min=2) == []
    assert _stretches([0, 20, 20, 0], core_min=2) == [(1, 3, 1)]


def test_a_stretch_extreme_is_its_first_largest_deviation():
    assert _stretches([0, 20, 30, 8, 30, None, 25, 0]) == [(1, 7, 2)]
    assert _stretches([0, 16, 16, 16, 0]) == [(1, 4, 1)]


def test_a_baseline_falling_to_a_level_with_frequent_accelerations_follows_it_down():
    """40 minutes at 155, then the trace settles at 130 with an acceleration back up to 155
    for 45 s every three minutes; the window is the last 30 minutes. The baseline is the lower
    level (SisPorto's lower of two frequent levels), not the acceleration level, and nothing
    reads as a deceleration. Without the rule the baseline stays at 155, because the
    accelerations keep the new level from 10 stable minutes, and the trace at its true
    baseline reads as decelerations."""

    def baseline(x: float) -> float:
        return 155 - 25 * min(1.0, max(0.0, (x - 2400) / 60))

    shapes = [Shape(t, 45, 25, ramp_in=8, ramp_out=8) for t in range(2520, 4800, 180)]
    fhr = fhr_trace(80, baseline=baseline, shapes=shapes)

    def read(params: CtgParams | None = None):
        return ctg_analyse(fhr=fhr, start=T0, end=T0 + 4800, assess_from=T0 + 3000, params=params)

    result = read()
    assert result.baseline_bpm == 130
    assert result.decelerations == []
    assert result.classification == NORMAL
    off = read(replace(CtgParams(), baseline_shift_share=0))
    assert off.baseline_bpm == 155 and off.decelerations  # the true baseline read as dips
