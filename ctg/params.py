"""The analysis's vocabulary of inputs: samples and per-second series, the window the product
classifies, and :class:`CtgParams`, every threshold of the analysis with its source.

Kept apart from ``ctg.analysis`` so that the steps the analysis calls (``ctg.artefacts``,
``ctg.baseline``) read their parameters from here without importing the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

Sample = tuple[float, float]
Series = list[float | None]

# The window the product classifies (the alarm evaluator, the ward tiles, the CTG endpoint's
# default) and how much trace before it the analysis reads for the baseline and for FIGO's
# time criteria ("more than 30 minutes", "more than 50 minutes"). Every caller passes
# CTG_LOOKBACK_SECONDS of preceding trace where it has it, with ``assess_from`` at the
# classified window's start, so the evaluator, the API and the benchmark read alike.
CTG_WINDOW_SECONDS = 1800
CTG_LOOKBACK_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class CtgParams:
    """Thresholds of the analysis; the defaults are FIGO 2015's where FIGO gives a number."""

    period_seconds: int = 600  # the baseline is read per 10-minute period
    # Artefacts (ctg/artefacts.py): physiological range, and the fetal heart rate does not
    # jump by more than 25 bpm from one second to the next (Dawes 1991; Chudacek 2014).
    fhr_range: tuple[float, float] = (50, 240)
    artefact_jump_bpm: float = 25
    artefact_return_bpm: float = 20  # back near the level before the jump ...
    artefact_settle_seconds: int = 3  # ... for this long ends an artefact
    artefact_gap_seconds: int = 10  # a dropout this long resets the reference level
    artefact_max_seconds: int = 60  # a new level lasting this long is real (from the jump)
    # Baseline (ctg/baseline.py)
    baseline_min_stable_seconds: int = 120  # signal a 10-minute period needs for a level
    baseline_level_bpm: float = 5  # the level: mean of the seconds this close to the peak
    baseline_band_bpm: float = 10  # "near the level" (share of 10 minutes, tracking)
    baseline_slope_bpm_per_s: float = 1.0  # a second's weight halves at this slope
    baseline_minute_min_seconds: int = 20  # a minute's median needs this much signal
    # Of the last 10 minutes, this many with a median (all: a minute without a reading shows
    # no level, and FIGO's baseline change is one of 10 minutes) ...
    baseline_stable_minutes: int = 10
    baseline_stable_bpm: float = 8  # ... all within this of a new level: a baseline change
    # A lower level that holds this share of the last 10 minutes (within ``baseline_band_bpm``
    # of its peak) and lies in the normal range (from ``baseline_shift_floor_bpm``) is a
    # baseline change down, even while accelerations keep some minutes off it: a fetus with
    # frequent accelerations has its baseline at the lower level (SisPorto, Ayres-de-Campos
    # 2000, takes the lower of two frequent levels above 110 bpm). A deceleration holding 70 %
    # of 10 minutes lasts 7 and more: a prolonged one below 110 is never absorbed so. 0: off.
    baseline_shift_share: float = 0.7
    baseline_shift_floor_bpm: float = 110
    baseline_track_bpm: float = 10  # a slow drift is followed within this ...
    baseline_track_share: float = 0.5  # ... when this share of 10 minutes is near it
    baseline_return_minutes: int = 3  # back at the previous baseline this long: an episode
    normal_baseline: tuple[int, int] = (110, 160)
    pathological_baseline_below: int = 100
    event_bpm: float = 15  # accelerations and decelerations: more than 15 bpm from baseline
    event_min_seconds: float = 15  # ... lasting more than 15 s
    event_core_min_seconds: float = 5  # at least this long beyond 15 bpm (no single spikes)
    event_edge_bpm: float = 5  # an event's extent: until the trace is back within 5 bpm
    bridge_seconds: int = 5  # gaps of signal back near baseline this short do not split one
    loss_bridge_seconds: int = 30  # nor does a dropout of the signal this short
    acceleration_max_seconds: float = 600  # 10 min or longer is a baseline change
    prolonged_seconds: float = 180  # a deceleration of more than 3 min is prolonged
    pathological_prolonged_seconds: float = 300  # one prolonged deceleration > 5 min
    gradual_onset_seconds: float = 30  # onset to nadir of 30 s or more: gradual (not variable)
    late_start_after_contraction_seconds: float = 20
    early_max_depth_bpm: float = 30  # early decelerations are shallow
    early_nadir_tolerance_seconds: float = 20  # ... and their nadir coincides with the acme
    # FIGO 2015's features of decelerations that go with hypoxia: late (gradual onset and
    # return when contractions are not told), longer than 3 minutes, or a variable one with
    # a U-shaped component: this long within this much of its nadir.
    u_shape_seconds: float = 30
    u_shape_band_bpm: float = 10
    # ... and depth and duration (FIGO 1986 and NICE 2007's "atypical" variable
    # decelerations: a fall of 60 bpm or more, or lasting 60 s or more).
    hypoxic_depth_bpm: float = 60
    hypoxic_seconds: float = 60
    # ... read on an untyped deceleration too (neither early, late nor variable: a gradual
    # onset the toco does not time as late; deeper than an early one can be): the features
    # are of the fetal insult, whatever the kind (FIGO 2015 reads the same U-shape, depth and
    # duration as the signs of hypoxia; an untyped deceleration must not read as harmless).
    hypoxic_untyped: bool = True
    # Decelerations with hypoxic features repeat (a pattern) while each follows the previous
    # one within this long: two contraction intervals of active labour.
    pattern_gap_seconds: float = 600
    variability_segment_seconds: int = 60
    variability_min_samples: int = 30
    normal_variability: tuple[float, float] = (5, 25)
    variability_stretch_share: float = 0.8  # a stretch of reduced (increased) variability
    reduced_variability_minutes: float = 50
    increased_variability_minutes: float = 30
    repetitive_share: float = 0.5  # decelerations with more than 50 % of contractions
    # Decelerations deeper than an early one can be (``early_max_depth_bpm``) recurring in
    # the window this many times (0: off) are not normal, whether or not the toco shows them
    # with more than half of the contractions: FIGO 2015 calls only shallow, early
    # decelerations benign and a normal trace one without repetitive decelerations, and
    # FIGO 1986 (the guideline the CTU-UHB obstetricians read by) calls variable
    # decelerations suspicious. An external toco often misses or mistimes contractions.
    recurrent_decelerations: int = 3
    repetitive_pattern_minutes: float = 30
    repetitive_pattern_minutes_reduced_variability: float = 20
    tachycardia_shortens_pattern: bool = True
    # No acceleration for this long (the preceding trace included; over all of a shorter
    # trace, from a whole window of 30 minutes on): not reassuring (FIGO 1986's "absence of accelerations for more than 40
    # minutes", which the obstetricians who classified CTU-UHB read as suspicious).
    accelerations_absent_minutes: float = 40
    insufficient_loss_percent: float = 50
    # Poor signal never hides a pathological finding: above ``insufficient_loss_percent`` the
    # readable part is still read, and a pathological feature found in it is reported when at
    # least 10 minutes (one baseline period, a third of the window) could be read (our choice:
    # FIGO 2015 says a trace of poor quality must not be taken as reassuring; the CTU-UHB
    # obstetricians classified such windows). Anything short of pathological stays
    # insufficient_signal.
    pathological_max_loss_percent: float = 200 / 3
    contraction_rise: float = 15  # toco units above the resting tone
    contraction_edge_rise: float = 5
    contraction_min_seconds: float = 30
    contraction_core_min_seconds: float = 10
    contraction_tone_percentile: float = 0.1  # resting tone: 10th percentile of a period
    contraction_rate_seconds: int = 1800  # frequency averaged over 30 min
    tachysystole_per_10_min: float = 5
    ua_min_coverage: float = 0.5  # uterine activity needs half the window recorded
