"""Maternal capture on synthetic one-second traces whose answer is known by construction."""

from __future__ import annotations

import math
import random

from ctg.analysis import Series
from ctg.maternal import MaternalParams, capture_stretches, maternal_capture

MINUTE = 60


def wandering(
    seconds: int, *, rng: random.Random, level: float, keep: float, step: float
) -> list[float]:
    """A rate wandering about ``level``: each second keeps ``keep`` of the last one's drift and
    adds a normal step of ``step`` bpm."""
    out, drift = [], 0.0
    for _ in range(seconds):
        drift = keep * drift + rng.gauss(0, step)
        out.append(level + drift)
    return out


def fetal(seconds: int, *, rng: random.Random, level: float = 140) -> list[float]:
    """A fetal rate: its level with 5-15 bpm of wandering variability."""
    return wandering(seconds, rng=rng, level=level, keep=0.9, step=2.0)


def maternal(seconds: int, *, rng: random.Random, level: float = 85) -> list[float]:
    """A mother's rate in labour: slower, smoother, rising a little now and then."""
    return wandering(seconds, rng=rng, level=level, keep=0.97, step=0.6)


def lose(series: Series, every: int, seconds: int, *, offset: int = 0) -> Series:
    """Drop ``seconds`` of signal every ``every`` seconds."""
    return [None if (k + offset) % every < seconds else v for k, v in enumerate(series)]


def captured_trace(rng: random.Random) -> tuple[Series, Series, range]:
    """30 minutes: the fetus at 140 for 12 minutes, then 8 minutes in which the fetal channel
    records the mother (with her channel's noise and a few brief deviations), then the fetus
    again. Both channels drop out now and then."""
    total, first, last = 30 * MINUTE, 12 * MINUTE, 20 * MINUTE
    mother = maternal(total, rng=rng)
    fetus = fetal(total, rng=rng)
    fhr: Series = list(fetus)
    for k in range(first, last):
        fhr[k] = mother[k] + rng.uniform(-2.5, 2.5)
    for k in (first + 100, first + 101, first + 102, first + 250, first + 251):
        fhr[k] = mother[k] + 18  # brief deviations: the Doppler half-locked on something else
    fhr = lose(fhr, 45, 6)
    mhr = lose(list(mother), 170, 40, offset=30)
    return fhr, mhr, range(first, last)


def flagged_share(flags: list[bool], seconds: range, fhr: Series) -> float:
    scored = [k for k in seconds if fhr[k] is not None]
    return sum(flags[k] for k in scored) / len(scored)


def outside(flags: list[bool], seconds: range, *, margin: int = 3) -> int:
    """Flagged seconds farther than ``margin`` from the stretch."""
    lo, hi = seconds.start - margin, seconds.stop + margin
    return sum(1 for k, flag in enumerate(flags) if flag and not lo <= k < hi)


def test_a_stretch_recorded_from_the_mother_is_flagged_across_dropouts_and_deviations():
    fhr, mhr, stretch = captured_trace(random.Random(1))
    capture = maternal_capture(fhr, mhr)
    flags = capture.seconds
    assert capture.confirmed == flags  # her channel confirms all of it
    assert flagged_share(flags, stretch, fhr) > 0.95
    assert outside(flags, stretch) == 0
    # One stretch: neither the dropouts nor the brief deviations break it.
    [(start, end)] = capture_stretches(flags)
    assert abs(start - stretch.start) <= 3 and abs(end - stretch.stop) <= 3


def test_the_stretch_is_flagged_from_the_fetal_channel_alone_without_the_maternal_one():
    fhr, _, stretch = captured_trace(random.Random(2))
    capture = maternal_capture(fhr, [None] * len(fhr))
    assert capture == maternal_capture(fhr, None)
    flags = capture.seconds
    assert flagged_share(flags, stretch, fhr) > 0.95
    assert outside(flags, stretch) == 0
    assert not any(capture.confirmed)  # the fetal channel's shape alone confirms nothing


def test_a_stretch_going_on_at_the_end_is_told_with_its_length():
    fhr, mhr, stretch = captured_trace(random.Random(7))
    end = stretch.start + 150
    capture = maternal_capture(fhr[:end], mhr[:end])
    seconds, confirmed, excluded = capture.ongoing(fhr[:end], within=15) or (0, False, True)
    assert abs(seconds - 150) <= 6 and confirmed  # it begins with a 6-s dropout
    assert not excluded  # at 85 bpm: it could be a fetal bradycardia
    alone = maternal_capture(fhr[:end], None)
    seconds, confirmed, _ = alone.ongoing(fhr[:end], within=15) or (0, True, True)
    assert abs(seconds - 150) <= 6 and not confirmed
    # Once the fetus is back, nothing is going on.
    after = stretch.stop + 60
    assert maternal_capture(fhr[:after], mhr[:after]).ongoing(fhr[:after], within=15) is None


def test_the_maternal_channel_present_only_part_of_the_time_is_enough():
    fhr, mhr, stretch = captured_trace(random.Random(3))
    # The mother's channel only in the stretch's first 3 minutes; the fetal channel near the
    # fetal level's edge (105 is not below ``maternal_rate_max_bpm``: no level evidence).
    fhr = [None if v is None else v + 20 if k in stretch else v for k, v in enumerate(fhr)]
    mhr = [
        None if v is None or not stretch.start - 60 <= k < stretch.start + 180 else v + 20
        for k, v in enumerate(mhr)
    ]
    flags = maternal_capture(fhr, mhr).seconds
    assert flagged_share(flags, stretch, fhr) > 0.95
    assert outside(flags, stretch) == 0


def test_a_stretch_is_carried_on_across_a_long_dropout_and_a_deviation_without_her_channel():
    """Her channel confirms the stretch's first 3 minutes only; after it, the fetal channel
    drops out for 25 s and leaves her level for 8 s (the Doppler half-locked on something
    else): still her, as the FHRMA experts mark it, and one stretch (hysteresis)."""
    fhr, mhr, stretch = captured_trace(random.Random(9))
    # A mother at 115 (no level evidence from the fetal channel alone), the fetus at 140.
    fhr = [None if v is None else v + 30 if k in stretch else v for k, v in enumerate(fhr)]
    mhr = [
        None if v is None or not stretch.start - 60 <= k < stretch.start + 180 else v + 30
        for k, v in enumerate(mhr)
    ]
    dropout = range(stretch.start + 300, stretch.start + 325)
    deviation = range(stretch.start + 380, stretch.start + 388)
    for k in dropout:
        fhr[k] = None
    for k in deviation:
        fhr[k] = (fhr[k] or 115.0) + 20
    capture = maternal_capture(fhr, mhr)
    assert flagged_share(capture.seconds, stretch, fhr) > 0.95
    assert outside(capture.seconds, stretch) == 0
    [(start, end)] = capture_stretches(capture.seconds)
    assert abs(start - stretch.start) <= 3 and abs(end - stretch.stop) <= 3
    # Shorter bridges end it at the dropout, as the detector did before.
    short = MaternalParams(bridge_seconds=5, piece_gap_seconds=15)
    assert flagged_share(maternal_capture(fhr, mhr, params=short).seconds, stretch, fhr) < 0.7
    # A fetal trace with the same dropout and a brief acceleration is never flagged.
    fetus: Series = list(fetal(30 * MINUTE, rng=random.Random(10)))
    for k in dropout:
        fetus[k] = None
    for k in deviation:
        fetus[k] = (fetus[k] or 140.0) + 20
    assert not any(maternal_capture(fetus, mhr).seconds)


def test_only_a_confirmed_stretch_at_a_baseline_like_rate_is_left_out_of_the_analysis():
    rng = random.Random(8)
    total, first, last = 30 * MINUTE, 12 * MINUTE, 20 * MINUTE
    for mother_level, left_out in ((125, True), (85, False)):
        mother = maternal(total, rng=rng, level=mother_level)
        fhr: Series = list(fetal(total, rng=rng, level=150))
        for k in range(first, last):
            fhr[k] = mother[k] + rng.uniform(-2, 2)
        capture = maternal_capture(fhr, list(mother))
        assert all(capture.confirmed[first + 5 : last - 5])
        # At 125 the mother's trace passes for a reassuring fetus: left out. At 85 it reads
        # as a bradycardia, which a fetus decelerating to her rate would show too: kept.
        assert all(capture.excluded[first + 5 : last - 5]) is left_out
        assert any(capture.excluded) is left_out


def test_a_fetal_deceleration_near_the_maternal_rate_is_not_flagged():
    rng = random.Random(4)
    total = 30 * MINUTE
    fhr: Series = list(fetal(total, rng=rng))
    # A 6-minute prolonged deceleration to 85: down over 40 s, back over 60 s.
    start, seconds = 12 * MINUTE, 6 * MINUTE
    for k in range(start, start + seconds):
        x = k - start
        depth = 55 * min(1.0, x / 40, (seconds - x) / 60)
        fhr[k] = (fhr[k] or 0.0) - depth
    mother = maternal(total, rng=rng, level=70)
    for mhr in ([None] * total, mother):
        assert not any(maternal_capture(fhr, mhr).seconds), "a true deceleration read as the mother"


def test_a_fetal_trace_crossing_or_beside_the_maternal_rate_is_not_flagged():
    rng = random.Random(5)
    total = 20 * MINUTE
    fhr: Series = list(fetal(total, rng=rng, level=125))
    mhr: Series = list(maternal(total, rng=rng, level=112))  # 13 bpm below, for 20 minutes
    # A variable deceleration crossing the mother's rate for a few seconds.
    for k in range(600, 640):
        x = k - 600
        fhr[k] = (fhr[k] or 0.0) - 50 * min(1.0, x / 10, (40 - x) / 10)
    assert not any(maternal_capture(fhr, mhr).seconds)


def test_the_mothers_rate_crossing_a_steady_fetus_is_not_flagged_but_a_short_capture_is():
    """The mother's rate rises with a contraction to the fetus's for 80 s and falls back: the
    fetal trace goes on through it unchanged, a crossing. The fetal channel jumping to her
    rate for as long is a capture."""
    rng = random.Random(1)
    total = 30 * MINUTE
    # A fetus at 130 with normal variability (a 10-bpm band).
    fetus = [130 + 5 * math.sin(2 * math.pi * k / 40) + rng.gauss(0, 1.5) for k in range(total)]
    mhr: Series = list(maternal(total, rng=rng, level=95))
    start, rise, plateau = 12 * MINUTE, 40, 80
    for k in range(start, start + 2 * rise + plateau):
        x = k - start
        mhr[k] = (mhr[k] or 0.0) + 35 * min(1.0, x / rise, (2 * rise + plateau - x) / rise)
    fhr: Series = list(fetus)
    assert not any(maternal_capture(fhr, mhr).seconds)
    # Without the rule, the agreement at the top of her acceleration is flagged.
    off = MaternalParams(crossing_max_seconds=0)
    assert sum(maternal_capture(fhr, mhr, params=off).seconds) > 30
    # The fetal channel records her for the same 80 s instead: it jumps to her rate and back.
    plateau_seconds = range(start + rise, start + rise + plateau)
    for k in plateau_seconds:
        fhr[k] = (mhr[k] or 0.0) - 40 + rng.uniform(-2, 2)
        mhr[k] = (mhr[k] or 0.0) - 40
    assert flagged_share(maternal_capture(fhr, mhr).seconds, plateau_seconds, fhr) > 0.9


def test_parameters_change_the_answer():
    fhr, mhr, stretch = captured_trace(random.Random(6))
    strict = MaternalParams(tolerance_bpm=0.5, maternal_rate_max_bpm=60)
    assert flagged_share(maternal_capture(fhr, mhr, params=strict).seconds, stretch, fhr) < 0.5


def test_a_jump_to_a_maternal_rate_after_a_dropout_of_minutes_is_flagged():
    """The fetus at 140 for 10 minutes, the Doppler lost for 200 s, then the trace at 90 for 3
    minutes (no maternal channel): the transducer found the mother while it searched. The
    fetal level it replaced counts from ``neighbour_seconds`` (240 s) away."""
    rng = random.Random(11)
    fhr: Series = [*fetal(10 * MINUTE, rng=rng), *([None] * 200)]
    low = range(len(fhr), len(fhr) + 3 * MINUTE)
    fhr += maternal(3 * MINUTE, rng=rng, level=90)
    assert flagged_share(maternal_capture(fhr, None).seconds, low, fhr) == 1.0
    near = MaternalParams(neighbour_seconds=120)
    assert not any(maternal_capture(fhr, None, params=near).seconds)


def test_a_low_piece_far_from_the_mothers_rate_around_it_is_not_flagged():
    """The trace jumps from 140 to 95 for 3 minutes, beside a dropout, where her channel is
    missing; her rate, read up to 2 minutes before it, was 75: the low trace is not hers (a
    fetal deceleration seen across the dropout). Her rate at 92 would not deny it."""
    rng = random.Random(12)
    total, start, seconds = 30 * MINUTE, 12 * MINUTE + 20, 3 * MINUTE
    fhr: Series = list(fetal(total, rng=rng))
    fhr[start - 20 : start] = [None] * 20
    low = range(start, start + seconds)
    for k, v in zip(low, fetal(seconds, rng=rng, level=95), strict=True):
        fhr[k] = v
    for mother_level, flagged in ((75, False), (92, True)):
        mhr: Series = [*maternal(10 * MINUTE, rng=rng, level=mother_level)]
        mhr += [None] * (total - len(mhr))
        assert any(maternal_capture(fhr, mhr).seconds) is flagged
        # Without the rule, the jump alone flags it.
        off = MaternalParams(mother_context_seconds=0)
        assert flagged_share(maternal_capture(fhr, mhr, params=off).seconds, low, fhr) == 1.0
