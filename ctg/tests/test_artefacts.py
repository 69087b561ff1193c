"""Artefacts of the Doppler fetal heart rate (ctg.artefacts), second by second."""

from __future__ import annotations

from ctg.analysis import CtgParams
from ctg.artefacts import artefacts_find

P = CtgParams()


def flagged(series) -> list[int]:
    return [k for k, f in enumerate(artefacts_find(series, P)) if f]


def test_a_spike_and_a_halving_are_flagged_until_the_trace_is_back():
    series = [140.0] * 20 + [70.0] * 5 + [141.0] * 20
    # The halved seconds, and the 2 seconds back before the third confirms the return.
    assert flagged(series) == [20, 21, 22, 23, 24, 25, 26]
    spike = [140.0] * 10 + [200.0] + [140.0] * 10
    assert flagged(spike) == [10, 11, 12]


def test_out_of_range_values_are_flagged_and_missing_seconds_are_not():
    series = [140.0, 45.0, None, 141.0, 245.0, 140.0]
    assert flagged(series) == [1, 4]


def test_a_sudden_level_that_lasts_is_accepted_from_the_jump_on():
    # A deceleration whose fall the monitor lost: a bradycardia at 80 is never hidden.
    series = [140.0] * 30 + [80.0] * (P.artefact_max_seconds + 30)
    assert flagged(series) == []


def test_a_dropout_resets_the_reference():
    # After 15 s without signal the trace resumes 40 bpm lower: nothing to compare with.
    series = [140.0] * 30 + [None] * 15 + [100.0] * 30
    assert flagged(series) == []
    # After a short dropout the same jump is an artefact.
    short = [140.0] * 30 + [None] * 3 + [100.0] * 10 + [140.0] * 10
    assert flagged(short) == [*range(33, 43), 43, 44]
