"""The fetal heart rate baseline, read so that a deceleration or an acceleration can never
become it.

FIGO 2015: the baseline is "the mean level of the most horizontal and less oscillatory FHR
segments", estimated over 10-minute periods, excluding accelerations and decelerations. Three
published methods shape how it is read here (written for this project, not ported):

- the level is the peak of the frequency distribution of the heart rate over the last 10
  minutes (Dawes GS et al., J Perinat Med 1991;19:47-51, the Oxford/System 8000 method:
  decelerations spread their values over many levels, the baseline piles them up at one),
  each second weighted by how horizontal the trace is around it (FIGO's "most horizontal";
  the weighting by stability of Houzé de l'Aulnoit's weighted-median filter, Boudet S et al.,
  Comput Biol Med 2019, FHRMA toolbox ``aamwmfb.m``), and the level refined as the mean of the
  seconds within ``baseline_band_bpm`` of that peak (FIGO's "mean level");
- the baseline moves to a new level only after 10 stable minutes there: every minute of the
  last 10 has its median within ``baseline_stable_bpm`` of the new level (FIGO: a change
  lasting 10 minutes or more is a baseline change; Mantel R et al., Int J Biomed Comput
  1990;25:261-72, follow the baseline only through stable stretches);
- a departure of 10 minutes or more (every minute's median more than 15 bpm away from the
  baseline, on the same side) is a new baseline too, however unsteady (FIGO: a deceleration
  or acceleration lasting 10 minutes or more is a baseline change);
- a return to the baseline before such a change (its level for the last
  ``baseline_return_minutes``) undoes the change: the episode (a bradycardia of more than 10
  minutes, say) is read against the baseline before it, and no "baseline 90" outlives it;
- a lower level within the normal range (from ``baseline_shift_floor_bpm``, 110) that holds
  ``baseline_shift_share`` (70 %) of the last 10 minutes is a change down as well, even while
  accelerations keep a few minutes off it: the baseline of a fetus with frequent accelerations
  is the lower of the two levels (SisPorto's rule, Ayres-de-Campos D et al., J Matern Fetal
  Med 2000;9:311-318, re-coded in the FHRMA toolbox as ``aamayres.m``: the lowest frequent
  level above 110 bpm). Without it a baseline seeded at the upper level is never left, and
  the trace at its true baseline reads as a prolonged deceleration;
- between such changes it follows slow drifts, within ``baseline_track_bpm`` of where it is,
  when at least ``baseline_track_share`` of the last 10 minutes lie near the new level; a
  deceleration or acceleration, which leaves the baseline by more than 15 bpm, can never pull
  it so, so a prolonged deceleration is measured against the baseline before it.

The baseline is computed minute by minute from the start of the trace the caller gives (the
preceding context included), each minute from the minutes up to it (what was known then),
starting from the level of the trace's first 30 minutes (held for its first 10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ctg.params import CtgParams

LOW_BPM = 50  # the histogram's first bin (the ingest's lower bound)
BINS = 200  # 50-249 bpm in 1-bpm bins
MINUTE = 60
PERIOD_MINUTES = 10
SEED_MINUTES = 30  # the first level is read over the first 30 minutes of the trace


def sorted_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row sorted (NaN last) and its count of numbers."""
    return np.sort(x, axis=1), np.count_nonzero(~np.isnan(x), axis=1)


def row_medians(x: np.ndarray, *, min_count: int) -> np.ndarray:
    """Each row's median of its numbers (NaN where fewer than ``min_count``)."""
    s, n = sorted_rows(x)
    rows = np.arange(len(x))
    lo = np.clip((n - 1) // 2, 0, x.shape[1] - 1)
    hi = np.clip(n // 2, 0, x.shape[1] - 1)
    med = (s[rows, lo] + s[rows, hi]) / 2
    return np.where(n >= max(min_count, 1), med, np.nan)


def minutes_of(x: np.ndarray) -> tuple[np.ndarray, int]:
    """The series as rows of whole minutes counted back from its end (NaN-padded at the
    start), and the padding."""
    pad = (-len(x)) % MINUTE
    padded = np.concatenate([np.full(pad, np.nan), x]) if pad else x
    return padded.reshape(-1, MINUTE), pad


def baseline_per_second(fhr: np.ndarray, p: CtgParams) -> np.ndarray:
    """Each second's baseline (NaN where none can be read yet), from the trace up to it."""
    count = len(fhr)
    if count < p.period_seconds:
        return np.full(count, np.nan)
    rows, pad = minutes_of(fhr)
    minutes = len(rows)
    flat = rows.ravel()
    valid = ~np.isnan(flat)

    # How horizontal the trace is around each second: the slope over +-3 s.
    slope = np.full(len(flat), np.nan)
    slope[3:-3] = np.abs(flat[6:] - flat[:-6]) / 6
    weight = 1.0 / (1.0 + (np.nan_to_num(slope, nan=0.0) / p.baseline_slope_bpm_per_s) ** 2)

    bins = np.clip(np.rint(np.nan_to_num(flat, nan=LOW_BPM)) - LOW_BPM, 0, BINS - 1).astype(int)
    index = (np.arange(len(flat)) // MINUTE) * BINS + bins
    hist_w = np.bincount(index[valid], weights=weight[valid], minlength=minutes * BINS)
    hist_n = np.bincount(index[valid], minlength=minutes * BINS).astype(float)
    hist_w, hist_n = hist_w.reshape(minutes, BINS), hist_n.reshape(minutes, BINS)

    def trailing(h: np.ndarray) -> np.ndarray:  # sums over the last 10 minutes
        c = np.vstack([np.zeros((1, h.shape[1])), np.cumsum(h, axis=0)])
        k = np.arange(1, minutes + 1)
        sums: np.ndarray = c[k] - c[np.maximum(0, k - PERIOD_MINUTES)]
        return sums

    # Row k: the last 10 minutes up to minute k; the last row: the first 30 minutes.
    win_w = np.vstack([trailing(hist_w), hist_w[:SEED_MINUTES].sum(axis=0)])
    win_n = np.vstack([trailing(hist_n), hist_n[:SEED_MINUTES].sum(axis=0)])
    rows_n = minutes + 1
    # The peak of the distribution, smoothed over +-3 bpm (one oscillation's spread).
    half = 3
    cw = np.hstack([np.zeros((rows_n, 1)), np.cumsum(win_w, axis=1)])
    b = np.arange(BINS)
    smooth = cw[:, np.minimum(b + half + 1, BINS)] - cw[:, np.maximum(b - half, 0)]
    peak = np.argmax(smooth, axis=1)
    # The level: the mean of the seconds close to the peak (its centre, unbiased by the
    # shoulders of events); the share of the 10 minutes within the band of it.
    cn = np.hstack([np.zeros((rows_n, 1)), np.cumsum(win_n, axis=1)])
    cv = np.hstack([np.zeros((rows_n, 1)), np.cumsum(win_n * (b + LOW_BPM), axis=1)])
    r = np.arange(rows_n)
    lo = np.maximum(peak - int(p.baseline_level_bpm), 0)
    hi = np.minimum(peak + int(p.baseline_level_bpm) + 1, BINS)
    centre = cn[r, hi] - cn[r, lo]
    level = np.divide(cv[r, hi] - cv[r, lo], centre, out=np.full(rows_n, np.nan), where=centre > 0)
    band = int(p.baseline_band_bpm)
    lo, hi = np.maximum(peak - band, 0), np.minimum(peak + band + 1, BINS)
    near = cn[r, hi] - cn[r, lo]
    present = cn[:, -1]
    share = np.divide(near, present, out=np.zeros(rows_n), where=present > 0)

    medians = row_medians(rows, min_count=p.baseline_minute_min_seconds)

    def stable_at(k: int) -> bool:
        """Every minute of the last 10 (all of them read) near the level there."""
        recent = medians[max(0, k - PERIOD_MINUTES + 1) : k + 1]
        known = recent[~np.isnan(recent)]
        return len(known) >= p.baseline_stable_minutes and bool(
            np.all(np.abs(known - level[k]) <= p.baseline_stable_bpm)
        )

    base = np.full(minutes, np.nan)
    first = PERIOD_MINUTES - 1 if pad == 0 else PERIOD_MINUTES  # a whole period of trace
    first = min(first, minutes - 1)
    # Where to begin: the level of the first 30 minutes of the trace (a deceleration or an
    # acceleration there lasts less than the baseline around it), held for the first period.
    if present[minutes] < p.baseline_min_stable_seconds:
        return np.full(count, np.nan)
    seed, current = first, float(level[minutes])
    base[: seed + 1] = current
    previous: float | None = None  # the baseline before a change of more than 15 bpm
    changed_at = 0
    back = p.baseline_return_minutes
    for k in range(seed + 1, minutes):
        if present[k] < p.baseline_min_stable_seconds:
            base[k] = current
            continue
        if previous is not None:
            last = medians[k - back + 1 : k + 1]
            if len(last) == back and bool(np.all(np.abs(last - previous) <= p.baseline_stable_bpm)):
                # Back at the baseline before the change: the change was an episode (a
                # bradycardia, a long acceleration), measured against that baseline.
                current = previous
                base[changed_at : k + 1] = current
                previous = None
                continue
        candidate = float(level[k])
        recent = medians[k - PERIOD_MINUTES + 1 : k + 1]
        known = recent[~np.isnan(recent)]
        # FIGO: a departure from the baseline lasting 10 minutes or more is a new baseline,
        # however unsteady: every minute's median more than 15 bpm away on the same side.
        departed = len(known) >= p.baseline_stable_minutes and (
            bool(np.all(known < current - p.event_bpm))
            or bool(np.all(known > current + p.event_bpm))
        )
        drift = (
            abs(candidate - current) <= p.baseline_track_bpm and share[k] >= p.baseline_track_share
        )
        # SisPorto: the lower of two frequent levels, in the normal range, is the baseline.
        shifted = (
            p.baseline_shift_share > 0
            and candidate >= p.baseline_shift_floor_bpm
            and share[k] >= p.baseline_shift_share
            and candidate < current
        )
        if stable_at(k) or departed or drift or shifted:
            if abs(candidate - current) > p.event_bpm:
                previous, changed_at = current, k
            current = candidate
        base[k] = current
    per_second = np.repeat(base, MINUTE)
    out: np.ndarray = per_second[pad:]
    return out
