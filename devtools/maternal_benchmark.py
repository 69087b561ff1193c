"""Maternal capture scored on the FHRMA false-signal dataset (``manage.py
ctg_benchmark_maternal``; docs/ctg.md, "Maternal capture").

The dataset (Boudet et al., Biosensors 2022;12:691; GPL-3.0, read from its path, never copied
into the repository) holds Doppler recordings at 4 Hz with the fetal (``fhr_K``, bpm x 4) and
maternal (``mhr_K``) channels and the toco (``toco_K``, x 2), 0 meaning no signal, and per
record the sample ranges where experts judged the fetal channel a false signal (``FS_FHR``)
or true (``TS_FHR``).

Each recording is brought to the product's one-second grid (the mean of the samples present
in each second, ``ctg.analysis.per_second``); a second is labelled when most of its samples
are, and scored only when the fetal channel has signal in it (as the FHRMA authors score a
sample only where the channel has one). A scorer gives, per recording, one flag per second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctg.analysis import Series
from ctg.maternal import maternal_capture

SAMPLES_PER_SECOND = 4
EPISODE_MIN_SECONDS = 60
NPZ_NAME = "fhrma-fs-train.npz"
LABELS_NAME = "fhrma-fs-train-labels.json"

FALSE, TRUE, UNLABELLED = -1, 1, 0


@dataclass(frozen=True, slots=True)
class Recording:
    name: str
    fhr: Series  # bpm, per second
    mhr: Series
    toco: Series
    labels: list[int]  # per second: FALSE, TRUE or UNLABELLED
    episodes: list[tuple[int, int]]  # false-signal ranges of a minute or more, in seconds


def _grid(samples: np.ndarray, scale: float) -> Series:
    """The mean of the non-zero samples of each second (None where there is none)."""
    count = len(samples) // SAMPLES_PER_SECOND
    block = samples[: count * SAMPLES_PER_SECOND].astype(np.float64).reshape(count, -1)
    present = (block > 0).sum(axis=1)
    total = block.sum(axis=1)
    means = np.divide(total, np.maximum(present, 1)) / scale
    return [float(v) if n else None for v, n in zip(means, present, strict=True)]


def _labels(ranges: dict[str, list[list[int]]], samples: int) -> list[int]:
    """Per second, the label most of its samples carry (ranges are 1-based and inclusive, as
    the dataset's MATLAB code reads them; a false-signal mark wins over a true one)."""
    per_sample = np.zeros(samples, dtype=np.int8)
    for first, last in ranges.get("TS_FHR", []):
        per_sample[max(0, first - 1) : last] = TRUE
    for first, last in ranges.get("FS_FHR", []):
        per_sample[max(0, first - 1) : last] = FALSE
    count = samples // SAMPLES_PER_SECOND
    mean = per_sample[: count * SAMPLES_PER_SECOND].reshape(count, -1).mean(axis=1)
    return [FALSE if m <= -0.5 else TRUE if m >= 0.5 else UNLABELLED for m in mean]


def recordings_load(data: Path) -> list[Recording]:
    """The training set's recordings, on the one-second grid, in the order of their names."""
    labels = json.loads((data / LABELS_NAME).read_text())
    out = []
    with np.load(data / NPZ_NAME) as arrays:
        for name in sorted(labels):
            fhr = arrays[f"fhr_{name}"]
            ranges = labels[name]
            episodes = [
                ((first - 1) // SAMPLES_PER_SECOND, last // SAMPLES_PER_SECOND)
                for first, last in ranges.get("FS_FHR", [])
                if last - first >= EPISODE_MIN_SECONDS * SAMPLES_PER_SECOND
            ]
            out.append(
                Recording(
                    name=name,
                    fhr=_grid(fhr, 4.0),
                    mhr=_grid(arrays[f"mhr_{name}"], 4.0),
                    toco=_grid(arrays[f"toco_{name}"], 2.0),
                    labels=_labels(ranges, len(fhr)),
                    episodes=episodes,
                )
            )
    return out


Scorer = Callable[[Recording], Sequence[bool]]


@dataclass(frozen=True, slots=True)
class Score:
    recordings: int
    false_seconds: int  # labelled false signal, with fetal signal
    true_seconds: int
    flagged_false: int
    flagged_true: int
    false_flags: int  # flagged stretches touching true signal and no false signal
    episodes: int
    episodes_flagged: int  # with at least one flagged second
    episodes_half_flagged: int  # with at least half of their scored seconds flagged
    seconds_per_hour: float  # scorer time per hour of recording

    @property
    def sensitivity(self) -> float:
        return self.flagged_false / self.false_seconds if self.false_seconds else 0.0

    @property
    def ppv(self) -> float:
        flagged = self.flagged_false + self.flagged_true
        return self.flagged_false / flagged if flagged else 0.0

    @property
    def false_flags_per_hour(self) -> float:
        return self.false_flags / (self.true_seconds / 3600) if self.true_seconds else 0.0

    @property
    def false_share(self) -> float:
        """The share of the true signal's seconds flagged."""
        return self.flagged_true / self.true_seconds if self.true_seconds else 0.0

    @property
    def episode_share(self) -> float:
        return self.episodes_flagged / self.episodes if self.episodes else 0.0


def score(recordings: Sequence[Recording], scorer: Scorer) -> Score:
    false_seconds = true_seconds = flagged_false = flagged_true = false_flags = 0
    episodes = episodes_flagged = episodes_half = 0
    elapsed = 0.0
    total_seconds = 0
    for rec in recordings:
        began = time.perf_counter()
        flags = list(scorer(rec))
        elapsed += time.perf_counter() - began
        total_seconds += len(rec.fhr)
        assert len(flags) == len(rec.fhr), rec.name
        touches_true = touches_false = False
        for k, (flag, label, value) in enumerate(zip(flags, rec.labels, rec.fhr, strict=True)):
            scored = value is not None
            if scored and label == FALSE:
                false_seconds += 1
                flagged_false += flag
            elif scored and label == TRUE:
                true_seconds += 1
                flagged_true += flag
            if flag:
                touches_true |= scored and label == TRUE
                touches_false |= label == FALSE
            if (not flag or k == len(flags) - 1) and (touches_true or touches_false):
                false_flags += touches_true and not touches_false
                touches_true = touches_false = False
        for first, last in rec.episodes:
            scored_here = [k for k in range(first, min(last, len(flags))) if rec.fhr[k] is not None]
            hits = sum(1 for k in scored_here if flags[k])
            episodes += 1
            episodes_flagged += hits > 0
            episodes_half += bool(scored_here) and 2 * hits >= len(scored_here)
    return Score(
        recordings=len(recordings),
        false_seconds=false_seconds,
        true_seconds=true_seconds,
        flagged_false=flagged_false,
        flagged_true=flagged_true,
        false_flags=false_flags,
        episodes=episodes,
        episodes_flagged=episodes_flagged,
        episodes_half_flagged=episodes_half,
        seconds_per_hour=elapsed / (total_seconds / 3600) if total_seconds else 0.0,
    )


# --- Scorers ----------------------------------------------------------------------------------


def before_scorer(
    rec: Recording, *, tolerance_bpm: float = 5, seconds: float = 60, lookback: int = 600
) -> list[bool]:
    """The condition the product had before the detector: at each second, the fetal channel
    within 5 bpm of the maternal one for more than 60 s up to that second (dropouts of up to
    5 s bridged), judged over the last 10 minutes as the alarm rule did."""
    from ctg.analysis import maternal_coincidence_series

    flags = []
    for k in range(len(rec.fhr)):
        lo = max(0, k + 1 - lookback)
        held = maternal_coincidence_series(
            fhr=rec.fhr[lo : k + 1], mhr=rec.mhr[lo : k + 1], tolerance_bpm=tolerance_bpm
        )
        flags.append(held > seconds)
    return flags


def detector_scorer(rec: Recording) -> list[bool]:
    """The detector over the whole recording: every second it flags."""
    return maternal_capture(rec.fhr, rec.mhr).seconds


def confirmed_scorer(rec: Recording) -> list[bool]:
    """The seconds the maternal channel confirms."""
    return maternal_capture(rec.fhr, rec.mhr).confirmed


def excluded_scorer(rec: Recording) -> list[bool]:
    """The seconds the analysis leaves out."""
    return maternal_capture(rec.fhr, rec.mhr).excluded


def alarm_scorer(rec: Recording, *, every: int = 5, context: int = 600) -> list[bool]:
    """The alarm's condition (``alerts.ctg_rules.maternal_condition`` with the default
    limits) as the evaluator sees it: judged every ``every`` seconds (its evaluation
    interval) on the trace up to that moment only, ``context`` seconds of it, and holding
    until the next evaluation."""
    from alerts.ctg_rules import CtgLimits, maternal_condition

    limits = CtgLimits()
    count = len(rec.fhr)
    flags = [False] * count
    for end in range(every, count, every):  # an evaluation after the second end - 1
        lo = max(0, end - context)
        condition = maternal_condition(
            fhr=rec.fhr[lo:end], mhr=rec.mhr[lo:end], maternal=None, limits=limits
        )
        until = min(count, end + every)
        flags[end:until] = [condition.active] * (until - end)
    return flags


SCORERS: dict[str, Scorer] = {
    "before": before_scorer,
    "detector": detector_scorer,
    "confirmed": confirmed_scorer,
    "excluded": excluded_scorer,
    "alarm": alarm_scorer,
}
DEFAULT_SCORERS = ("before", "detector", "confirmed", "excluded")


def report_lines(name: str, part: str, s: Score) -> list[str]:
    return [
        f"{name} [{part}, {s.recordings} recordings]",
        f"  per labelled second: sensitivity {100 * s.sensitivity:.1f} %, positive predictive "
        f"value {100 * s.ppv:.1f} % ({s.flagged_false} of {s.false_seconds} false-signal "
        f"seconds flagged; {s.flagged_true} of {s.true_seconds} true-signal seconds, "
        f"{100 * s.false_share:.1f} %)",
        f"  false flags per hour of true signal: {s.false_flags_per_hour:.2f} "
        f"({s.false_flags} flagged stretches without false signal)",
        f"  false-signal episodes of a minute or more flagged: {s.episodes_flagged} of "
        f"{s.episodes} ({100 * s.episode_share:.1f} %); at least half of their seconds: "
        f"{s.episodes_half_flagged} ({100 * s.episodes_half_flagged / max(1, s.episodes):.1f} %)",
        f"  time: {1000 * s.seconds_per_hour:.1f} ms per hour of recording",
    ]


def window_timing(recordings: Sequence[Recording], *, seconds: int = 7200) -> list[float]:
    """The detector's CPU time (s; the process's own, so other work on the machine counts
    little) on the first ``seconds`` of each recording at least that long whose maternal
    channel has a reading in half of them (the slower path)."""
    times = []
    for rec in recordings:
        if len(rec.fhr) < seconds:
            continue
        fhr, mhr = rec.fhr[:seconds], rec.mhr[:seconds]
        if 2 * mhr.count(None) > seconds:
            continue
        began = time.process_time()
        maternal_capture(fhr, mhr)
        times.append(time.process_time() - began)
    return times
