"""Artefacts of a Doppler fetal heart rate: what the analysis must not read as the fetus.

A Doppler monitor's autocorrelation locks onto a harmonic now and then (the rate halves or
doubles), a single beat is mis-timed (an isolated spike), or the transducer slips and the
trace jumps to another source. None of these is physiological: the fetal heart rate does not
change by more than 25 bpm from one second to the next (a deceleration falls by a few bpm per
second; Dawes GS, Moulden M, Redman CWG. System 8000: computerized antenatal FHR analysis.
J Perinat Med 1991;19:47-51, and the CTU-UHB preprocessing of Chudáček et al. 2014 both reject
such jumps). So a jump of more than ``artefact_jump_bpm`` opens an artefact (a halving or
doubling, a spike) that lasts until the trace is back near the level before the jump. A new
level that lasts ``artefact_max_seconds`` is accepted, from the jump on: a sustained halving
is rarer than a real bradycardia whose fall the monitor lost, and a missed bradycardia is the
worse error. A dropout of ``artefact_gap_seconds`` or more resets the reference (what came
before cannot be compared).

Excluded seconds become signal loss for the analysis and are counted (signal quality), never
read as events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctg.params import CtgParams, Series


def artefacts_find(fhr: Series, p: CtgParams) -> list[bool]:
    """One flag per second: True where the second's value is an artefact."""
    lo, hi = p.fhr_range
    jump, back, gap_limit = p.artefact_jump_bpm, p.artefact_return_bpm, p.artefact_gap_seconds
    flags = [False] * len(fhr)
    ref: float | None = None  # the last good value
    ref_at = -(10**9)
    in_artefact = False
    since = 0  # where the artefact began
    settled = 0  # seconds in a row back near the reference
    for i, v in enumerate(fhr):
        if v is None:
            continue
        if v < lo or v > hi:
            flags[i] = True
            continue
        if ref is None or i - ref_at > gap_limit:
            ref, ref_at, in_artefact = v, i, False
            continue
        if not in_artefact:
            if abs(v - ref) > jump:
                in_artefact, since, settled = True, i, 0
                flags[i] = True
            else:
                ref, ref_at = v, i
            continue
        # Inside an artefact: back near the reference?
        if abs(v - ref) <= back:
            settled += 1
            if settled >= p.artefact_settle_seconds:
                in_artefact = False
                ref, ref_at = v, i
            else:
                flags[i] = True
            continue
        settled = 0
        if i - since >= p.artefact_max_seconds:
            # A new level that lasts: the heart found again, or a real and sudden change
            # (a deceleration whose fall the monitor lost): accepted, from the jump on.
            for k in range(since, i):
                u = fhr[k]
                flags[k] = u is not None and (u < lo or u > hi)
            in_artefact = False
            ref, ref_at = v, i
            continue
        flags[i] = True
        ref_at = i  # the reference stays valid while the artefact goes on
    return flags
