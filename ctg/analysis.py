"""CTG features and classification after FIGO 2015 (Ayres-de-Campos et al., Int J Gynaecol
Obstet 2015;131:13-24), computed on a window of readings.

Pure functions: samples in, numbers out. A sample is ``(t, value)`` with ``t`` in epoch
seconds; any sampling rate is accepted. Everything is computed on a one-second grid (the mean
of the samples in each second; a second without a sample is signal loss), which is fine enough
for features measured in tens of seconds and keeps a 2-hour window at 7,200 points.

The steps, in order: the caller's exclusion mask (``excluded``: the fetal channel recording
the mother), artefacts (``ctg.artefacts``), the baseline (``ctg.baseline``), then here the
events against it, their kinds and hypoxic features, variability, contractions and the
classification. The trace before the classified window (``assess_from``) is read for the
baseline and FIGO's time criteria.

What each feature means, and where FIGO leaves a choice to the implementation, is documented
in docs/ctg.md; the thresholds are the fields of :class:`CtgParams`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ctg.artefacts import artefacts_find
from ctg.baseline import baseline_per_second, sorted_rows
from ctg.params import (
    CTG_WINDOW_SECONDS,
    CtgParams,
    Sample,
    Series,
)

NORMAL = "normal"
SUSPICIOUS = "suspicious"
PATHOLOGICAL = "pathological"
INSUFFICIENT = "insufficient_signal"
CLASSIFICATIONS = (NORMAL, SUSPICIOUS, PATHOLOGICAL, INSUFFICIENT)

EARLY, LATE, VARIABLE = "early", "late", "variable"
DECELERATION_KINDS = (EARLY, LATE, VARIABLE)


@dataclass(frozen=True, slots=True)
class Acceleration:
    start: float
    end: float
    peak_bpm: int
    peak_at: float
    ongoing: bool = False  # still going on at the window's end


@dataclass(frozen=True, slots=True)
class Deceleration:
    start: float
    end: float
    nadir_bpm: int
    nadir_at: float
    depth_bpm: int
    prolonged: bool
    kind: str | None
    ongoing: bool = False
    # FIGO 2015's features that go with hypoxia: "late", "prolonged", "U-shaped".
    hypoxic: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Contraction:
    start: float
    end: float
    peak: int
    peak_at: float


@dataclass(slots=True)
class CtgResult:
    start: float
    end: float
    baseline_bpm: int | None
    variability_bpm: float | None
    accelerations: list[Acceleration]
    decelerations: list[Deceleration]
    contractions: list[Contraction]
    contractions_per_10_min: float | None
    signal_loss_percent: float
    classification: str
    reasons: list[str]
    tachysystole: bool = False
    reduced_variability_minutes: int = 0
    increased_variability_minutes: int = 0
    baselines: list[int | None] = field(default_factory=list)  # per 10-minute period
    # Seconds of the window whose FHR was set aside before the analysis read it (the
    # ``excluded`` mask: the fetal channel recording the mother), in percent.
    excluded_percent: float = 0.0
    # Seconds of the window read as artefacts (ctg/artefacts.py), in percent.
    artefact_percent: float = 0.0
    # How long the pattern of decelerations with hypoxic features has lasted (seconds, the
    # preceding trace included), 0 without one.
    pattern_seconds: float = 0.0
    # Minutes since the last acceleration ended (the preceding trace included; all of the
    # trace when there was none).
    minutes_without_acceleration: float = 0.0


# --- The one-second grid ----------------------------------------------------------------------


def per_second(samples: Iterable[Sample], *, start: float, end: float) -> Series:
    """The mean of the samples in each second of [start, end); None where there is none."""
    count = max(0, math.ceil(end - start - 1e-9))
    sums = [0.0] * count
    ns = [0] * count
    for t, value in samples:
        i = math.floor(t - start)
        if 0 <= i < count and t < end:
            sums[i] += value
            ns[i] += 1
    return [s / n if n else None for s, n in zip(sums, ns, strict=True)]


def signal_loss_percent(series: Series) -> float:
    """The share of seconds without a sample, in percent (100 for an empty window)."""
    if not series:
        return 100.0
    missing = series.count(None)
    return round(100.0 * missing / len(series), 1)


def _periods(count: int, size: int) -> list[tuple[int, int]]:
    """Index ranges of whole periods counted back from the end; the remainder at the start
    joins the first period. No period when the window is shorter than one."""
    whole = count // size
    if whole == 0:
        return []
    first_end = count - (whole - 1) * size
    bounds = [(0, first_end)]
    bounds += [(first_end + k * size, first_end + (k + 1) * size) for k in range(whole - 1)]
    return bounds


# --- Events (accelerations, decelerations, contractions) --------------------------------------


@dataclass(frozen=True, slots=True)
class _Run:
    start: int  # index of the first second
    end: int  # index after the last second
    extreme: int  # index of the largest deviation


def _runs(
    deviation: Series,
    *,
    threshold: float,
    edge: float,
    bridge: int,
    core_min: float,
    min_seconds: float,
    loss_bridge: int = 0,
) -> list[_Run]:
    """Stretches where ``deviation`` exceeds ``threshold`` (gaps of up to ``bridge`` seconds
    of signal and ``loss_bridge`` seconds of signal loss bridged: a dropout does not end an
    event), widened to where it falls back to ``edge``; kept when the widened stretch lasts
    more than ``min_seconds`` and its part beyond the threshold at least ``core_min``."""
    count = len(deviation)
    cores: list[list[int]] = []  # [start, end, seconds beyond the threshold]
    reach = max(bridge, loss_bridge)
    # The next second of a core (no gap at all) is bridged whenever both bridges are >= 0:
    # decided once, not for every second (this loop runs over every second of the window).
    next_joins = bridge >= 0 and loss_bridge >= 0
    core: list[int] | None = None
    for i, d in enumerate(deviation):
        if d is None or d <= threshold:
            continue
        if core is not None:
            if i == core[1] and next_joins:
                core[1] = i + 1
                core[2] += 1
                continue
            if i - core[1] <= reach:
                gap = deviation[core[1] : i]
                missing = gap.count(None)
                if len(gap) - missing <= bridge and missing <= loss_bridge:
                    core[1] = i + 1
                    core[2] += 1
                    continue
        core = [i, i + 1, 1]
        cores.append(core)
    runs: list[_Run] = []
    last_end = 0
    for core_start, core_end, beyond in cores:
        if beyond < core_min:
            continue
        start = core_start
        while start > last_end and (d := deviation[start - 1]) is not None and d > edge:
            start -= 1
        end = core_end
        while end < count and (d := deviation[end]) is not None and d > edge:
            end += 1
        if end - start <= min_seconds:
            continue
        # The first second of the largest deviation (the stretch has signal: its core).
        stretch = deviation[start:end]
        largest = max(v for v in stretch if v is not None)
        extreme = start + next(k for k, v in enumerate(stretch) if v == largest)
        if runs and start <= runs[-1].end:  # two cores widened into one stretch
            previous = runs.pop()
            if (deviation[previous.extreme] or 0.0) >= (deviation[extreme] or 0.0):
                extreme = previous.extreme
            start = previous.start
        runs.append(_Run(start, end, extreme))
        last_end = end
    return runs


def _fhr_events(
    x: np.ndarray, base: np.ndarray, p: CtgParams
) -> tuple[list[_Run], list[_Run], np.ndarray]:
    """Accelerations and decelerations against the baseline, and a mask of their seconds."""
    diff = x - base
    above: Series = [None if math.isnan(d) else d for d in diff.tolist()]
    below: Series = [None if d is None else -d for d in above]

    def runs(deviation: Series, *, edge: float) -> list[_Run]:
        return _runs(
            deviation,
            threshold=p.event_bpm,
            edge=edge,
            bridge=p.bridge_seconds,
            core_min=p.event_core_min_seconds,
            min_seconds=p.event_min_seconds,
            loss_bridge=p.loss_bridge_seconds,
        )

    # A rise of 10 minutes or more is a new baseline, not an acceleration.
    ups = [
        r
        for r in runs(above, edge=p.event_edge_bpm)
        if r.end - r.start < p.acceleration_max_seconds
    ]
    downs = []
    for run in runs(below, edge=p.event_edge_bpm):
        if run.end - run.start <= p.prolonged_seconds:
            downs.append(run)
            continue
        # Longer than 3 minutes: one prolonged fall, or several decelerations whose recoveries
        # stop short of the baseline (or a wandering baseline with dips)? Split where the
        # trace comes back within 15 bpm of the baseline.
        subs = runs(below[run.start : run.end], edge=p.event_bpm)
        if len(subs) == 1 and _sustained(below, run, p.event_bpm):
            downs.append(run)
            continue
        downs += [_Run(run.start + r.start, run.start + r.end, run.start + r.extreme) for r in subs]
    mask = np.zeros(len(x), dtype=bool)
    for run in (*ups, *downs):
        mask[run.start : run.end] = True
    return ups, downs, mask


def _sustained(deviation: Series, run: _Run, threshold: float) -> bool:
    """Whether the run's median deviation is beyond ``threshold`` (a sustained change)."""
    values = sorted(v for v in deviation[run.start : run.end] if v is not None)
    return bool(values) and values[len(values) // 2] > threshold


def _round5(value: float) -> int:
    return int(5 * math.floor(value / 5 + 0.5))


def contractions_find(ua: Series, *, start: float, p: CtgParams) -> list[Contraction]:
    """Contractions: rises of uterine activity above the resting tone (the tone is the 10th
    percentile of each 10-minute period, or of the whole window when it is shorter)."""
    count = len(ua)
    present = count - ua.count(None)
    if count == 0 or present < p.ua_min_coverage * count:
        return []
    periods = _periods(count, p.period_seconds) or [(0, count)]
    tone: Series = []
    for lo, hi in periods:
        values = sorted(v for v in ua[lo:hi] if v is not None)
        level = values[int(p.contraction_tone_percentile * (len(values) - 1))] if values else None
        tone.extend([level] * (hi - lo))
    rise: Series = [
        None if v is None or b is None else v - b for v, b in zip(ua, tone, strict=True)
    ]
    runs = _runs(
        rise,
        threshold=p.contraction_rise,
        edge=p.contraction_edge_rise,
        bridge=p.bridge_seconds,
        core_min=p.contraction_core_min_seconds,
        min_seconds=p.contraction_min_seconds - 1,
    )
    return [
        Contraction(
            start=start + r.start,
            end=start + r.end,
            peak=round(ua[r.extreme] or 0),
            peak_at=start + r.extreme,
        )
        for r in runs
    ]


def _contraction_of(
    deceleration_start: float, nadir_at: float, end: float, contractions: list[Contraction]
) -> Contraction | None:
    """The contraction a deceleration goes with: one that overlaps it, nearest acme to nadir."""
    overlapping = [c for c in contractions if c.start < end and c.end > deceleration_start]
    if not overlapping:
        return None
    return min(overlapping, key=lambda c: abs(c.peak_at - nadir_at))


def _deceleration_kind(
    d_start: float,
    bottom_from: float,
    bottom_to: float,
    d_end: float,
    depth: float,
    contraction: Contraction | None,
    p: CtgParams,
) -> str | None:
    """Early, late or variable (None where it cannot be told); the bottom is where the
    deceleration is within 5 bpm of its nadir, [bottom_from, bottom_to)."""
    if bottom_from - d_start < p.gradual_onset_seconds:
        return VARIABLE  # a rapid drop: V-shaped (or U-shaped)
    nadir_at = (bottom_from + bottom_to) / 2
    if contraction is None:
        # FIGO 2015: where contractions are not adequately recorded, a deceleration with a
        # gradual onset and a gradual return (30 s or more each) is read as late.
        return LATE if d_end - bottom_to >= p.gradual_onset_seconds else None
    if (
        d_start - contraction.start > p.late_start_after_contraction_seconds
        and nadir_at > contraction.peak_at
        and d_end > contraction.end
    ):
        return LATE
    if (
        depth <= p.early_max_depth_bpm
        and abs(nadir_at - contraction.peak_at) <= p.early_nadir_tolerance_seconds
    ):
        return EARLY
    return None


def _u_shaped(fhr: Series, lo: int, hi: int, nadir: float, p: CtgParams) -> bool:
    """A U-shaped component: the deceleration stays near its nadir for a while."""
    near = sum(1 for v in fhr[lo:hi] if v is not None and v - nadir <= p.u_shape_band_bpm)
    return near >= p.u_shape_seconds


# --- Variability ------------------------------------------------------------------------------


def _minute_bandwidths(x: np.ndarray, in_event: np.ndarray, p: CtgParams) -> np.ndarray:
    """Bandwidth (highest minus lowest) of each 1-minute segment outside events, segments
    counted back from the end; NaN where a segment has too little such signal."""
    size = p.variability_segment_seconds
    usable = np.where(in_event, np.nan, x)
    pad = (-len(usable)) % size
    if pad:
        usable = np.concatenate([np.full(pad, np.nan), usable])
    rows, n = sorted_rows(usable.reshape(-1, size))
    r = np.arange(len(rows))
    width = rows[r, np.clip(n - 1, 0, size - 1)] - rows[:, 0]
    out: np.ndarray = np.where(n >= p.variability_min_samples, width, np.nan)
    return out


def _stretch_minutes(flags: list[bool | None], share: float) -> int:
    """How many minutes back from the end a stretch of flagged minutes reaches: the longest
    tail that starts with a flagged minute and in which flagged minutes make at least
    ``share`` of those that could be judged (None: not judged)."""
    best = 0
    yes = judged = 0
    for back, flag in enumerate(reversed(flags), 1):
        if flag is None:
            continue
        judged += 1
        yes += flag
        if flag and yes >= share * judged:
            best = back
    return best


# --- The analysis -----------------------------------------------------------------------------


def ctg_analyse(
    *,
    fhr: Iterable[Sample],
    ua: Iterable[Sample] = (),
    start: float,
    end: float,
    params: CtgParams | None = None,
    excluded: Sequence[bool] | None = None,
    assess_from: float | None = None,
) -> CtgResult:
    """All features of the window [assess_from, end) and its FIGO classification with
    reasons; the trace of [start, assess_from) is the preceding context (see
    :func:`ctg_analyse_series`)."""
    return ctg_analyse_series(
        fhr=per_second(fhr, start=start, end=end),
        ua=per_second(ua, start=start, end=end),
        start=start,
        end=end,
        params=params,
        excluded=excluded,
        assess_from=assess_from,
    )


def _exclude(fhr: Series, excluded: Sequence[bool] | None) -> Series:
    """``fhr`` with the excluded seconds set to None."""
    if excluded is None:
        return fhr
    if len(excluded) != len(fhr):
        raise ValueError("the excluded mask must have one entry per second of the window")
    return [None if x else v for v, x in zip(fhr, excluded, strict=True)]


def ctg_analyse_series(
    *,
    fhr: Series,
    ua: Series,
    start: float,
    end: float,
    params: CtgParams | None = None,
    excluded: Sequence[bool] | None = None,
    assess_from: float | None = None,
) -> CtgResult:
    """:func:`ctg_analyse` of samples already on the one-second grid of [start, end) (what
    :func:`per_second` gives; the alarm evaluator keeps its windows so). Reads, never changes,
    ``fhr`` and ``ua``.

    ``excluded``: one flag per second, True where the FHR is not the fetus's (the fetal
    channel recording the mother): those seconds are set aside before anything is read, and
    counted as signal quality (``excluded_percent``), never as events.

    ``assess_from``: where the classified window starts (default ``start``); the trace before
    it (CTG_LOOKBACK_SECONDS where the caller has it) is context: the baseline is read from
    it, and FIGO's time criteria ("more than 30 minutes", "more than 50 minutes") are judged
    over it. Events are reported when they reach into the window (with their whole extent).
    """
    p = params or CtgParams()
    total = len(fhr)
    skip = 0
    if assess_from is not None and assess_from > start:
        skip = min(total, round(assess_from - start))
    count = total - skip
    w_start = start + skip

    kept = _exclude(fhr, excluded)
    artefact = artefacts_find(kept, p)
    clean: Series = [None if a else v for v, a in zip(kept, artefact, strict=True)]
    x = np.array(clean, dtype=float)
    base = baseline_per_second(x, p)

    window_clean = clean[skip:]
    loss = signal_loss_percent(window_clean)
    set_aside = sum(1 for m in excluded[skip:] if m) if excluded is not None else 0
    artefacts = sum(1 for a in artefact[skip:] if a)

    ua_window = ua[skip:]
    contractions_all = contractions_find(ua, start=start, p=p)
    contractions = [c for c in contractions_all if c.end > w_start]
    rate, rate_span = _contraction_rate(contractions, ua_window, start=w_start, end=end, p=p)

    has_base = count >= p.period_seconds and bool(np.any(~np.isnan(base[skip:])))
    ups: list[_Run] = []
    downs: list[_Run] = []
    in_event = np.zeros(total, dtype=bool)
    if has_base:
        ups, downs, in_event = _fhr_events(x, base, p)
    base_list: list[float] = base.tolist()

    accelerations = [
        Acceleration(
            start=start + r.start,
            end=start + r.end,
            peak_bpm=round(clean[r.extreme] or 0),
            peak_at=start + r.extreme,
            ongoing=r.end >= total,
        )
        for r in ups
        if r.end > skip
    ]
    decelerations_all = []
    for r in downs:
        nadir = clean[r.extreme] or 0.0
        # Measured against the baseline before it (the one at its start).
        baseline_here = base_list[r.start]
        if math.isnan(baseline_here):
            baseline_here = base_list[r.extreme]
        d_start, d_end, nadir_at = start + r.start, start + r.end, start + r.extreme
        depth = baseline_here - nadir
        prolonged = r.end - r.start > p.prolonged_seconds
        kind = None
        hypoxic: list[str] = []
        if prolonged:
            hypoxic.append("prolonged")
        else:
            contraction = _contraction_of(d_start, nadir_at, d_end, contractions_all)
            # Onset and return are timed to the bottom (within a tenth of the depth of the
            # nadir), so that the noise of a U-shaped bottom does not move them.
            near = max(2.0, 0.1 * depth)
            bottom = [
                k
                for k in range(r.start, r.end)
                if (v := clean[k]) is not None and v - nadir <= near
            ]
            kind = _deceleration_kind(
                d_start, start + bottom[0], start + bottom[-1] + 1, d_end, depth, contraction, p
            )
            if kind == LATE:
                hypoxic.append("late")
            elif kind == VARIABLE or (kind is None and p.hypoxic_untyped):
                if _u_shaped(clean, r.start, r.end, nadir, p):
                    hypoxic.append("U-shaped")
                if depth >= p.hypoxic_depth_bpm:
                    hypoxic.append("deep")
                if r.end - r.start >= p.hypoxic_seconds:
                    hypoxic.append("long")
        decelerations_all.append(
            Deceleration(
                start=d_start,
                end=d_end,
                nadir_bpm=round(nadir),
                nadir_at=nadir_at,
                depth_bpm=round(depth),
                prolonged=prolonged,
                kind=kind,
                ongoing=r.end >= total,
                hypoxic=tuple(hypoxic),
            )
        )
    decelerations = [d for d in decelerations_all if d.end > w_start]

    bandwidths = _minute_bandwidths(x, in_event, p) if has_base else np.array([])
    window_minutes = count // p.variability_segment_seconds
    in_window = bandwidths[len(bandwidths) - window_minutes :] if window_minutes else bandwidths[:0]
    readable = in_window[~np.isnan(in_window)]
    variability = round(float(np.median(readable)), 1) if len(readable) else None
    vlow, vhigh = p.normal_variability
    judged: list[bool | None] = [
        None if math.isnan(b) else bool(b < vlow) for b in bandwidths.tolist()
    ]
    reduced = _stretch_minutes(judged, p.variability_stretch_share)
    judged = [None if math.isnan(b) else bool(b > vhigh) for b in bandwidths.tolist()]
    increased = _stretch_minutes(judged, p.variability_stretch_share)

    # The baseline of each 10-minute period of the window (at its end), and the window's:
    # the latest.
    rounded: list[int | None] = []
    for _, hi in _periods(count, p.period_seconds):
        b = base_list[skip + hi - 1]
        rounded.append(None if math.isnan(b) or not has_base else _round5(b))
    known = [b for b in rounded if b is not None]
    baseline = known[-1] if known else None
    tachysystole = (
        rate is not None
        and rate_span >= p.contraction_rate_seconds
        and rate > p.tachysystole_per_10_min
    )

    last_up = max((r.end for r in ups), default=0)
    without = (total - last_up) / 60
    result = CtgResult(
        start=w_start,
        end=end,
        baseline_bpm=baseline,
        variability_bpm=variability,
        accelerations=accelerations,
        decelerations=decelerations,
        contractions=contractions,
        contractions_per_10_min=rate,
        signal_loss_percent=loss,
        classification=INSUFFICIENT,
        reasons=[],
        tachysystole=tachysystole,
        reduced_variability_minutes=reduced,
        increased_variability_minutes=increased,
        baselines=rounded,
        excluded_percent=round(100.0 * set_aside / count, 1) if count else 0.0,
        artefact_percent=round(100.0 * artefacts / count, 1) if count else 0.0,
        pattern_seconds=_pattern_seconds(decelerations_all, contractions_all, w_start, end, p),
        minutes_without_acceleration=round(without, 1),
    )
    result.classification, result.reasons = _classify(result, count=count, total=total, p=p)
    return result


def _pattern_seconds(
    decelerations: list[Deceleration],
    contractions: list[Contraction],
    since: float,
    end: float,
    p: CtgParams,
) -> float:
    """How long decelerations with hypoxic features have repeated, up to the latest one that
    reaches into the window (from the first start to the last end of a chain in which each
    follows the previous within ``pattern_gap_seconds``, and which goes with more than half
    of the contractions recorded over it; up to the window's end while it goes on); 0 when
    there is no such chain of two or more."""
    hypoxic = [d for d in decelerations if d.hypoxic]
    if not hypoxic or hypoxic[-1].end <= since:
        return 0.0
    chain = [hypoxic[-1]]
    for d in reversed(hypoxic[:-1]):
        if chain[0].start - d.start > p.pattern_gap_seconds:
            break
        chain.insert(0, d)
    # A pattern still going on (its latest deceleration within the gap of the window's end)
    # lasts until now.
    last = chain[-1].end
    ongoing = end - last <= p.pattern_gap_seconds
    while len(chain) >= 2:
        lo, hi = chain[0].start, chain[-1].end
        over = [c for c in contractions if lo <= c.peak_at < hi]
        if len(over) < 2 or len(chain) > p.repetitive_share * len(over):
            return (end if ongoing else hi) - lo
        chain.pop(0)  # not repetitive from there: try the later part
    return 0.0


def _contraction_rate(
    contractions: list[Contraction], ua: Series, *, start: float, end: float, p: CtgParams
) -> tuple[float | None, float]:
    """Contractions per 10 minutes over the last 30 minutes (or the whole window if shorter,
    at least 10 minutes); None when uterine activity was not recorded well enough."""
    span = min(float(p.contraction_rate_seconds), end - start)
    if span < p.period_seconds:
        return None, span
    first = len(ua) - int(span)
    tail = ua[first:]
    if len(tail) - tail.count(None) < p.ua_min_coverage * len(tail):
        return None, span
    since = end - span
    count = sum(1 for c in contractions if c.peak_at >= since)
    return round(count * p.period_seconds / span, 1), span


def _classify(r: CtgResult, *, count: int, total: int, p: CtgParams) -> tuple[str, list[str]]:
    if count < p.period_seconds:
        minutes = p.period_seconds // 60
        return INSUFFICIENT, [
            f"The window is shorter than {minutes} minutes: the baseline is read over "
            f"{minutes} minutes."
        ]
    if r.signal_loss_percent > p.insufficient_loss_percent:
        missing = f"The fetal heart rate is missing for {r.signal_loss_percent:g} % of the window."
        if r.signal_loss_percent <= p.pathological_max_loss_percent and r.baseline_bpm is not None:
            found, reasons = _classify_readable(r, total=total, p=p)
            if found == PATHOLOGICAL:
                return PATHOLOGICAL, [*reasons, missing]
        return INSUFFICIENT, [missing]
    if r.baseline_bpm is None:
        return INSUFFICIENT, ["No stable fetal heart rate baseline could be read."]
    return _classify_readable(r, total=total, p=p)


def _classify_readable(r: CtgResult, *, total: int, p: CtgParams) -> tuple[str, list[str]]:
    """FIGO's classes of a window with a baseline."""
    if r.baseline_bpm is None:
        return INSUFFICIENT, ["No stable fetal heart rate baseline could be read."]

    pathological: list[str] = []
    suspicious: list[str] = []
    low, high = p.normal_baseline
    if r.baseline_bpm < p.pathological_baseline_below:
        pathological.append(
            f"Baseline {r.baseline_bpm} bpm (below {p.pathological_baseline_below})."
        )
    elif r.baseline_bpm < low:
        suspicious.append(f"Baseline {r.baseline_bpm} bpm (below {low}).")
    elif r.baseline_bpm > high:
        suspicious.append(f"Baseline {r.baseline_bpm} bpm (above {high}).")

    vlow, vhigh = p.normal_variability
    if r.reduced_variability_minutes > p.reduced_variability_minutes:
        pathological.append(
            f"Reduced variability (< {vlow:g} bpm) for {r.reduced_variability_minutes} minutes."
        )
    if r.increased_variability_minutes > p.increased_variability_minutes:
        pathological.append(
            f"Increased variability (> {vhigh:g} bpm) for {r.increased_variability_minutes} "
            "minutes."
        )
    if not pathological and r.variability_bpm is not None:
        if r.variability_bpm < vlow:
            suspicious.append(f"Reduced variability ({r.variability_bpm:g} bpm).")
        elif r.variability_bpm > vhigh:
            suspicious.append(f"Increased variability ({r.variability_bpm:g} bpm).")

    longest = max((d.seconds for d in r.decelerations if d.prolonged), default=0.0)
    # A prolonged deceleration still going on below 100 bpm: the fetal heart rate is at a
    # pathological level (FIGO's baseline below 100) for more than 3 minutes and has not
    # recovered; not to be waited on until it has lasted 5 minutes.
    falling = [
        d
        for d in r.decelerations
        if d.prolonged and d.ongoing and d.nadir_bpm < p.pathological_baseline_below
    ]
    if longest > p.pathological_prolonged_seconds:
        pathological.append(f"A prolonged deceleration of {duration_text(longest)}.")
    elif falling:
        d = falling[-1]
        pathological.append(
            f"A prolonged deceleration of {duration_text(d.seconds)} to {d.nadir_bpm} bpm, "
            "still going on."
        )
    elif longest:
        suspicious.append(f"A prolonged deceleration of {duration_text(longest)}.")

    reduced_now = r.variability_bpm is not None and r.variability_bpm < vlow
    # The fetus no longer compensating: reduced variability (FIGO's 20 minutes), or a
    # tachycardia with the decelerations (FIGO 2015: a rising baseline goes with evolving
    # hypoxaemia when decelerations repeat).
    tachycardia = r.baseline_bpm > high and p.tachycardia_shortens_pattern
    pattern_limit = (
        p.repetitive_pattern_minutes_reduced_variability
        if reduced_now or tachycardia
        else p.repetitive_pattern_minutes
    )
    with_contraction = sum(
        1
        for d in r.decelerations
        if not d.prolonged and _contraction_of(d.start, d.nadir_at, d.end, r.contractions)
    )
    repetitive = (
        len(r.contractions) >= 2
        and with_contraction >= 2
        and with_contraction > p.repetitive_share * len(r.contractions)
    )
    if tachycardia and r.pattern_seconds:
        # Decelerations with hypoxic features repeating; repetitive ones without them
        # (typical variable or early) over a tachycardia are suspicious, below.
        pathological.append(
            f"Tachycardia (baseline {r.baseline_bpm} bpm) with repetitive decelerations "
            "with hypoxic features."
        )
    elif r.pattern_seconds > pattern_limit * 60:
        pathological.append(
            "Repetitive late or prolonged decelerations (hypoxic features) for "
            f"{duration_text(r.pattern_seconds)}."
        )
    elif r.pattern_seconds or repetitive:
        suspicious.append("Repetitive decelerations.")
    elif p.recurrent_decelerations:
        deep = [d for d in r.decelerations if d.depth_bpm > p.early_max_depth_bpm]
        if len(deep) >= p.recurrent_decelerations:
            suspicious.append(
                f"Recurrent decelerations: {len(deep)} deeper than {p.early_max_depth_bpm:g} bpm."
            )

    if r.minutes_without_acceleration >= min(p.accelerations_absent_minutes, total / 60) and (
        total >= CTG_WINDOW_SECONDS
    ):
        suspicious.append(f"No acceleration for {round(r.minutes_without_acceleration)} minutes.")

    extra = []
    if r.tachysystole:
        extra.append(f"Tachysystole: {r.contractions_per_10_min:g} contractions per 10 minutes.")
    if pathological:
        return PATHOLOGICAL, pathological + suspicious + extra
    if suspicious:
        return SUSPICIOUS, suspicious + extra
    if r.variability_bpm is None:
        return INSUFFICIENT, ["The variability could not be read (too few stable minutes)."]
    return NORMAL, [
        f"Baseline {r.baseline_bpm} bpm, variability {r.variability_bpm:g} bpm, no repetitive "
        "decelerations.",
        *extra,
    ]


def duration_text(seconds: float) -> str:
    """A duration as a clinician reads it: seconds up to two minutes, then minutes."""
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"


# --- Technical checks (the alarm rules use them) ----------------------------------------------


def maternal_coincidence_seconds(
    *,
    fhr: Iterable[Sample],
    mhr: Iterable[Sample],
    start: float,
    end: float,
    tolerance_bpm: float = 5,
    bridge_seconds: int = 5,
) -> float:
    """How long, up to the window's end, the fetal channel has followed the maternal heart
    rate within ``tolerance_bpm`` (seconds; 0 when it does not now). Seconds where either is
    missing, up to ``bridge_seconds`` in a row, do not break the stretch."""
    return maternal_coincidence_series(
        fhr=per_second(fhr, start=start, end=end),
        mhr=per_second(mhr, start=start, end=end),
        tolerance_bpm=tolerance_bpm,
        bridge_seconds=bridge_seconds,
    )


def maternal_coincidence_series(
    *, fhr: Series, mhr: Series, tolerance_bpm: float = 5, bridge_seconds: int = 5
) -> float:
    """:func:`maternal_coincidence_seconds` of two series on the same one-second grid."""
    f, m = fhr, mhr
    run_start: int | None = None
    gap = 0
    last_match: int | None = None
    for k in range(len(f) - 1, -1, -1):
        a, b = f[k], m[k]
        if a is None or b is None:
            gap += 1
            if gap > bridge_seconds:
                break
            continue
        if abs(a - b) > tolerance_bpm:
            break
        gap = 0
        run_start = k
        if last_match is None:
            last_match = k
    if run_start is None or last_match is None:
        return 0.0
    if len(f) - 1 - last_match > bridge_seconds:
        return 0.0  # the stretch ended before the window's end
    return float(len(f) - run_start)
