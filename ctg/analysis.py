"""CTG features and classification after FIGO 2015 (Ayres-de-Campos et al., Int J Gynaecol
Obstet 2015;131:13-24), computed on a window of readings.

Pure functions: samples in, numbers out. A sample is ``(t, value)`` with ``t`` in epoch
seconds; any sampling rate is accepted. Everything is computed on a one-second grid (the mean
of the samples in each second; a second without a sample is signal loss), which is fine enough
for features measured in tens of seconds and keeps a 2-hour window at 7,200 points.

What each feature means, and where FIGO leaves a choice to the implementation, is documented
in docs/ctg.md; the thresholds are the fields of :class:`CtgParams`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Sample = tuple[float, float]
Series = list[float | None]

NORMAL = "normal"
SUSPICIOUS = "suspicious"
PATHOLOGICAL = "pathological"
INSUFFICIENT = "insufficient_signal"

EARLY, LATE, VARIABLE = "early", "late", "variable"

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
    baseline_min_stable_seconds: int = 120  # stable signal a period needs for a baseline
    baseline_band_bpm: float = 10  # first pass: samples this close to the median are stable
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
    variability_segment_seconds: int = 60
    variability_min_samples: int = 30
    normal_variability: tuple[float, float] = (5, 25)
    reduced_variability_minutes: float = 50
    increased_variability_minutes: float = 30
    repetitive_share: float = 0.5  # decelerations with more than 50 % of contractions
    repetitive_pattern_minutes: float = 30
    repetitive_pattern_minutes_reduced_variability: float = 20
    insufficient_loss_percent: float = 50
    contraction_rise: float = 15  # toco units above the resting tone
    contraction_edge_rise: float = 5
    contraction_min_seconds: float = 30
    contraction_core_min_seconds: float = 10
    contraction_tone_percentile: float = 0.1  # resting tone: 10th percentile of a period
    contraction_rate_seconds: int = 1800  # frequency averaged over 30 min
    tachysystole_per_10_min: float = 5
    ua_min_coverage: float = 0.5  # uterine activity needs half the window recorded


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


def _baseline_series(baselines: Sequence[float | None], periods: list[tuple[int, int]]) -> Series:
    """Each second's baseline: its period's, else the nearest period's that has one."""
    known = [(k, b) for k, b in enumerate(baselines) if b is not None]
    if not known:
        return [None] * (periods[-1][1] if periods else 0)
    out: Series = []
    for k, (lo, hi) in enumerate(periods):
        b = baselines[k]
        if b is None:
            b = min(known, key=lambda kb: abs(kb[0] - k))[1]
        out.extend([b] * (hi - lo))
    return out


def _fhr_events(fhr: Series, base: Series, p: CtgParams) -> tuple[list[_Run], list[_Run], set[int]]:
    above: Series = [
        None if v is None or b is None else v - b for v, b in zip(fhr, base, strict=True)
    ]
    below: Series = [None if d is None else -d for d in above]

    def runs(deviation: Series) -> list[_Run]:
        return _runs(
            deviation,
            threshold=p.event_bpm,
            edge=p.event_edge_bpm,
            bridge=p.bridge_seconds,
            core_min=p.event_core_min_seconds,
            min_seconds=p.event_min_seconds,
            loss_bridge=p.loss_bridge_seconds,
        )

    # A rise of 10 minutes or more is a new baseline, not an acceleration.
    ups = [r for r in runs(above) if r.end - r.start < p.acceleration_max_seconds]
    downs = runs(below)
    inside = {k for run in (*ups, *downs) for k in range(run.start, run.end)}
    return ups, downs, inside


def _period_baselines(
    fhr: Series, periods: list[tuple[int, int]], p: CtgParams, excluded: set[int]
) -> list[float | None]:
    """Per period: the mean of the stable seconds (outside events and within the band of the
    median), when there are enough of them; not yet rounded."""
    result: list[float | None] = []
    for lo, hi in periods:
        present = [v for k, v in enumerate(fhr[lo:hi], lo) if v is not None and k not in excluded]
        if len(present) < p.baseline_min_stable_seconds:
            result.append(None)
            continue
        median = statistics.median(present)
        stable = [v for v in present if abs(v - median) <= p.baseline_band_bpm]
        if len(stable) < p.baseline_min_stable_seconds:
            result.append(None)
            continue
        result.append(statistics.fmean(stable))
    return result


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
    nadir_at: float,
    d_end: float,
    depth: float,
    contraction: Contraction | None,
    p: CtgParams,
) -> str | None:
    if nadir_at - d_start < p.gradual_onset_seconds:
        return VARIABLE  # a rapid drop: V-shaped
    if contraction is None:
        return None  # gradual, but no contraction to judge its timing against
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


# --- Variability ------------------------------------------------------------------------------


def _variability(fhr: Series, excluded: set[int], p: CtgParams) -> list[float]:
    """Bandwidth (highest minus lowest) of each 1-minute segment, outside events."""
    size = p.variability_segment_seconds
    bandwidths = []
    for lo in range(0, len(fhr) - size + 1, size):
        values = [
            v for k, v in enumerate(fhr[lo : lo + size], lo) if v is not None and k not in excluded
        ]
        if len(values) >= p.variability_min_samples:
            bandwidths.append(max(values) - min(values))
    return bandwidths


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
    it is context for the baseline and the time criteria (CTG_LOOKBACK_SECONDS).
    """
    p = params or CtgParams()
    fhr = _exclude(fhr, excluded)
    skip = 0
    if assess_from is not None and assess_from > start:
        skip = min(len(fhr), round(assess_from - start))
        fhr, ua, start = fhr[skip:], ua[skip:], start + skip
    set_aside = sum(1 for x in excluded[skip:] if x) if excluded is not None else 0
    fhr_s, ua_s = fhr, ua
    count = len(fhr_s)
    loss = signal_loss_percent(fhr_s)
    contractions = contractions_find(ua_s, start=start, p=p)
    rate, rate_span = _contraction_rate(contractions, ua_s, start=start, end=end, p=p)
    periods = _periods(count, p.period_seconds)

    ups: list[_Run] = []
    downs: list[_Run] = []
    in_events: set[int] = set()
    rounded: list[int | None] = []
    base: Series = [None] * count
    if periods:
        # Baseline and events depend on each other: estimate the baseline, find the events
        # against it, estimate it again without them, and find the events once more.
        for _ in range(2):
            estimates = _period_baselines(fhr_s, periods, p, in_events)
            rounded = [None if b is None else _round5(b) for b in estimates]
            if all(b is None for b in rounded):
                # No period has a baseline (a monitor just started, the signal is lost), so
                # there are no events against it, and another pass would find the same.
                base, ups, downs, in_events = [None] * count, [], [], set()
                break
            base = _baseline_series(rounded, periods)
            ups, downs, in_events = _fhr_events(fhr_s, base, p)

    accelerations = [
        Acceleration(
            start=start + r.start,
            end=start + r.end,
            peak_bpm=round(fhr_s[r.extreme] or 0),
            peak_at=start + r.extreme,
            ongoing=r.end >= count,
        )
        for r in ups
    ]
    decelerations = []
    for r in downs:
        nadir = fhr_s[r.extreme] or 0.0
        baseline_here = base[r.extreme] or 0.0
        d_start, d_end, nadir_at = start + r.start, start + r.end, start + r.extreme
        depth = baseline_here - nadir
        prolonged = r.end - r.start > p.prolonged_seconds
        kind = None
        if not prolonged:
            contraction = _contraction_of(d_start, nadir_at, d_end, contractions)
            kind = _deceleration_kind(d_start, nadir_at, d_end, depth, contraction, p)
        decelerations.append(
            Deceleration(
                start=d_start,
                end=d_end,
                nadir_bpm=round(nadir),
                nadir_at=nadir_at,
                depth_bpm=round(depth),
                prolonged=prolonged,
                kind=kind,
                ongoing=r.end >= count,
            )
        )

    bandwidths = _variability(fhr_s, in_events, p) if periods else []
    variability = round(statistics.median(bandwidths), 1) if bandwidths else None
    reduced = sum(1 for b in bandwidths if b < p.normal_variability[0])
    increased = sum(1 for b in bandwidths if b > p.normal_variability[1])
    known = [b for b in rounded if b is not None]
    # The window's baseline: the latest 10-minute period's that has one.
    baseline = known[-1] if known else None
    tachysystole = (
        rate is not None
        and rate_span >= p.contraction_rate_seconds
        and rate > p.tachysystole_per_10_min
    )

    result = CtgResult(
        start=start,
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
    )
    result.classification, result.reasons = _classify(result, count=count, p=p)
    return result


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


def _classify(r: CtgResult, *, count: int, p: CtgParams) -> tuple[str, list[str]]:
    if count < p.period_seconds:
        minutes = p.period_seconds // 60
        return INSUFFICIENT, [
            f"The window is shorter than {minutes} minutes: the baseline is read over "
            f"{minutes} minutes."
        ]
    if r.signal_loss_percent > p.insufficient_loss_percent:
        return INSUFFICIENT, [
            f"The fetal heart rate is missing for {r.signal_loss_percent:g} % of the window."
        ]
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
    reduced_pathological = r.reduced_variability_minutes > p.reduced_variability_minutes
    if reduced_pathological:
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
    if longest > p.pathological_prolonged_seconds:
        pathological.append(f"A prolonged deceleration of {_minutes(longest)}.")
    elif longest:
        suspicious.append(f"A prolonged deceleration of {_minutes(longest)}.")

    late_or_prolonged = [d for d in r.decelerations if d.kind == LATE or d.prolonged]
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
    pattern_limit = (
        p.repetitive_pattern_minutes_reduced_variability
        if r.variability_bpm is not None and r.variability_bpm < vlow
        else p.repetitive_pattern_minutes
    )
    late = [d for d in r.decelerations if d.kind == LATE]
    if len(late_or_prolonged) >= 2 and (
        len(late) > p.repetitive_share * max(len(r.contractions), 1)
        or len(late_or_prolonged) - len(late) >= 2
    ):
        span = late_or_prolonged[-1].end - late_or_prolonged[0].start
        if span > pattern_limit * 60:
            pathological.append(f"Repetitive late or prolonged decelerations for {_minutes(span)}.")
        elif repetitive:
            suspicious.append("Repetitive decelerations.")
    elif repetitive:
        suspicious.append("Repetitive decelerations.")

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


def _minutes(seconds: float) -> str:
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
