"""The CTG analysis measured against obstetricians on real labour recordings (CTU-UHB).

The CTU-UHB intrapartum database (Chudáček V et al., BMC Pregnancy Childbirth 2014;14:16)
with the FIGO classes given by nine obstetricians (Spilka J et al.) to two 30-minute windows
per record: step 1, the 30 minutes starting 60 minutes before the end of the first stage of
labour (header field ``Pos. II.st.``, a sample index at 4 Hz); step 2, the 30 minutes ending
there. The data is read from a path (never part of the repository); see docs/ctg.md.

Each window is analysed as the product analyses a patient's last 30 minutes: the readings a
monitor would have sent (a zero is no reading; the ingest refuses values outside its bounds),
averaged per second as the database does, with CTG_LOOKBACK_SECONDS of preceding trace where
the recording has it, through ``ctg.window.ctg_read`` (what the alarm evaluator and the API
call) with the default parameters.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from ctg.analysis import (
    NORMAL,
    PATHOLOGICAL,
    SUSPICIOUS,
    CtgParams,
    CtgResult,
    Series,
    ctg_analyse_series,
)
from ctg.params import CTG_LOOKBACK_SECONDS, CTG_WINDOW_SECONDS
from ctg.window import CTG_WINDOW, ctg_read
from monitoring.models import Metric
from monitoring.readings import VALUE_BOUNDS

RATE_HZ = 4
CTU_FILES = (
    "ctu-uhb-even.npz",
    "ctu-uhb-even-clinical.json",
    "ctu-uhb-even-expert-labels.csv",
)
CLASSES = (1, 2, 3)  # FIGO: normal, suspicious, pathological
CLASS_OF = {NORMAL: 1, SUSPICIOUS: 2, PATHOLOGICAL: 3}
ACIDAEMIA_PH = 7.05
STEPS = (1, 2)


@dataclass(slots=True)
class Record:
    rec_id: str
    fhr: np.ndarray  # x 100, 4 Hz, 0 = no signal
    uc: np.ndarray
    second_stage: int  # sample index
    ph: float | None
    experts: dict[int, dict[int, int]] = field(default_factory=dict)  # step -> expert -> class


def ctu_missing(data: Path) -> list[Path]:
    """The CTU-UHB files the benchmark needs that are not under ``data``."""
    return [data / name for name in CTU_FILES if not (data / name).is_file()]


def ctu_load(data: Path, *, limit: int | None = None) -> list[Record]:
    """The records (in the order of their ids), with their experts' classes per step."""
    arrays = np.load(data / CTU_FILES[0])
    clinical = json.loads((data / CTU_FILES[1]).read_text())
    labels: dict[str, dict[int, dict[int, int]]] = {}
    with (data / CTU_FILES[2]).open(newline="") as f:
        for row in csv.DictReader(f):
            per_step = labels.setdefault(row["rec_id"].strip(), {1: {}, 2: {}})
            expert = int(row["expert_id"])
            for step in STEPS:
                value = int(row[f"eval_step{step}"])
                # A record evaluated twice by one expert: the first evaluation counts.
                if value in CLASSES and expert not in per_step[step]:
                    per_step[step][expert] = value
    ids = sorted(k[4:] for k in arrays.files if k.startswith("fhr_"))
    if limit is not None:
        ids = ids[:limit]
    records = []
    for rec_id in ids:
        header = clinical[rec_id]
        try:
            ph: float | None = float(header.get("pH", ""))
        except ValueError:
            ph = None
        records.append(
            Record(
                rec_id=rec_id,
                fhr=arrays[f"fhr_{rec_id}"],
                uc=arrays[f"uc_{rec_id}"],
                second_stage=int(float(header["Pos. II.st."])),
                ph=ph,
                experts=labels.get(rec_id, {1: {}, 2: {}}),
            )
        )
    return records


def readings_grid(samples: np.ndarray, *, bounds: tuple[int, int], seconds: int) -> Series:
    """What the product keeps of a 4 Hz channel: the readings a monitor sends (0 is no
    reading; the ingest refuses a value outside ``bounds``), averaged per second."""
    values = samples[: seconds * RATE_HZ].astype(np.float64) / 100.0
    values = np.pad(values, (0, seconds * RATE_HZ - len(values)))
    lo, hi = bounds
    ok = (values > 0) & (values >= lo) & (values <= hi)
    shaped_ok = ok.reshape(seconds, RATE_HZ)
    n = shaped_ok.sum(axis=1)
    total = np.where(shaped_ok, values.reshape(seconds, RATE_HZ), 0.0).sum(axis=1)
    mean = np.divide(total, n, out=np.zeros(seconds), where=n > 0)
    return [float(m) if k else None for m, k in zip(mean, n, strict=True)]


def step_window(record: Record, step: int) -> tuple[int, int]:
    """The classified window of a step, in seconds from the recording's start: it ends at the
    end of the first stage (step 2) or 30 minutes before it (step 1), within the recording.
    A caesarean section in the first stage has no second stage (``Pos. II.st.`` is -1): the
    first stage ends with the recording."""
    length = len(record.fhr) // RATE_HZ
    stage = record.second_stage // RATE_HZ if record.second_stage >= 0 else length
    end = min(stage, length)
    if step == 1:
        end -= CTG_WINDOW_SECONDS
    end = max(end, 0)
    return max(0, end - CTG_WINDOW_SECONDS), end


@dataclass(slots=True)
class Analysed:
    rec_id: str
    step: int
    result: CtgResult
    seconds: float


def analyse(record: Record, step: int, *, params: CtgParams | None = None) -> Analysed:
    """One step's window analysed as the product analyses a patient's last 30 minutes."""
    start, end = step_window(record, step)
    context = max(0, start - CTG_LOOKBACK_SECONDS)
    seconds = end - context
    fhr_all = readings_grid(record.fhr, bounds=VALUE_BOUNDS[Metric.FETAL_HEART_RATE], seconds=end)[
        context:
    ]
    ua_all = readings_grid(
        record.uc, bounds=(0, VALUE_BOUNDS[Metric.UTERINE_ACTIVITY][1]), seconds=end
    )[context:]
    assert len(fhr_all) == seconds
    began = time.process_time()
    # The product's reading (ctg.window: the evaluator's and the API's window, look-back,
    # monitored time and maternal-capture check; CTU-UHB has no maternal channel).
    result = ctg_read(
        fhr=fhr_all,
        ua=ua_all,
        start=float(context),
        end=float(end),
        window=CTG_WINDOW.of_length(end - start),
        params=params,
    ).result
    took = time.process_time() - began
    return Analysed(record.rec_id, step, result, took)


# --- Scores -----------------------------------------------------------------------------------


def median_class(classes: Sequence[int]) -> int:
    """The median of the experts' classes (the lower middle one for an even count)."""
    ordered = sorted(classes)
    return ordered[(len(ordered) - 1) // 2]


def kappa(a: Sequence[int], b: Sequence[int], *, weights: str | None = None) -> float:
    if len(set(a) | set(b)) < 2:
        return 1.0 if list(a) == list(b) else 0.0
    return float(cohen_kappa_score(a, b, labels=list(CLASSES), weights=weights))


def expert_levels(records: Sequence[Record], step: int) -> dict[str, Any]:
    """Each expert's kappa against the median of the other experts, over the windows that
    expert classified (the level a reader of the trace should reach)."""
    experts = sorted({e for r in records for e in r.experts[step]})
    unweighted, weighted, sensitivity, specificity = [], [], [], []
    for expert in experts:
        own, others = [], []
        acid_called, acid, healthy_called, healthy = 0, 0, 0, 0
        for r in records:
            votes = r.experts[step]
            if expert not in votes:
                continue
            rest = [c for e, c in votes.items() if e != expert]
            if not rest:
                continue
            own.append(votes[expert])
            others.append(median_class(rest))
            if r.ph is not None:
                if r.ph < ACIDAEMIA_PH:
                    acid += 1
                    acid_called += votes[expert] == 3
                else:
                    healthy += 1
                    healthy_called += votes[expert] != 3
        if len(own) < 2:
            continue
        unweighted.append(kappa(own, others))
        weighted.append(kappa(own, others, weights="linear"))
        if acid:
            sensitivity.append(acid_called / acid)
        if healthy:
            specificity.append(healthy_called / healthy)
    return {
        "experts": len(unweighted),
        "kappa_mean": statistics.fmean(unweighted) if unweighted else None,
        "kappa_range": (min(unweighted), max(unweighted)) if unweighted else None,
        "kappa_linear_mean": statistics.fmean(weighted) if weighted else None,
        "kappa_linear_range": (min(weighted), max(weighted)) if weighted else None,
        "sensitivity_mean": statistics.fmean(sensitivity) if sensitivity else None,
        "specificity_mean": statistics.fmean(specificity) if specificity else None,
    }


def step_scores(records: Sequence[Record], analysed: Sequence[Analysed], step: int) -> dict:
    """The analysis against the experts' median class for one step."""
    by_id = {r.rec_id: r for r in records}
    ours, median, insufficient = [], [], 0
    acid_called, acid, healthy_called, healthy = 0, 0, 0, 0
    times = []
    for a in analysed:
        times.append(a.seconds)
        votes = by_id[a.rec_id].experts[step]
        if not votes:
            continue
        cls = CLASS_OF.get(a.result.classification)
        if cls is None:
            # insufficient_signal: the clinician is told to look; scored as suspicious
            # (neither reassuring nor an alarm), and counted.
            insufficient += 1
            cls = 2
        ours.append(cls)
        median.append(median_class(list(votes.values())))
        ph = by_id[a.rec_id].ph
        if ph is not None:
            if ph < ACIDAEMIA_PH:
                acid += 1
                acid_called += cls == 3
            else:
                healthy += 1
                healthy_called += cls != 3
    matrix = confusion_matrix(median, ours, labels=list(CLASSES)) if ours else None
    expert_pathological = sum(1 for m in median if m == 3)
    pathological_called_normal = sum(
        1 for m, o in zip(median, ours, strict=True) if m == 3 and o == 1
    )
    return {
        "step": step,
        "windows": len(ours),
        "insufficient": insufficient,
        "kappa": kappa(ours, median) if ours else None,
        "kappa_linear": kappa(ours, median, weights="linear") if ours else None,
        "agreement": sum(1 for m, o in zip(median, ours, strict=True) if m == o) / len(ours)
        if ours
        else None,
        "confusion": matrix.tolist() if matrix is not None else None,
        "expert_pathological": expert_pathological,
        "pathological_called_normal": pathological_called_normal,
        "pathological_called_normal_share": pathological_called_normal / expert_pathological
        if expert_pathological
        else None,
        "acidaemia": acid,
        "sensitivity": acid_called / acid if acid else None,
        "specificity": healthy_called / healthy if healthy else None,
        "ms_per_window_mean": 1000 * statistics.fmean(times) if times else None,
        "ms_per_window_max": 1000 * max(times) if times else None,
        "experts": expert_levels(records, step),
    }


def ctu_benchmark(
    data: Path, *, limit: int | None = None, params: CtgParams | None = None
) -> dict[str, Any]:
    """Both steps' scores (the analysis and the experts' own level) on the records under
    ``data``."""
    records = ctu_load(data, limit=limit)
    out: dict[str, Any] = {
        "records": len(records),
        "window_seconds": CTG_WINDOW_SECONDS,
        "lookback_seconds": CTG_LOOKBACK_SECONDS,
        "steps": [],
    }
    for step in STEPS:
        analysed = [analyse(r, step, params=params) for r in records]
        out["steps"].append(step_scores(records, analysed, step))
    out["two_hour_ms"] = two_hour_timing(records, params=params)
    return out


TWO_HOURS = 7200


def two_hour_timing(
    records: Sequence[Record], *, pairs: int = 20, params: CtgParams | None = None
) -> dict[str, float] | None:
    """The analysis (``ctg_analyse_series``) of a 2-hour window, the longest the API
    answers: two recordings joined (CTU-UHB's last at most 90 minutes), each timed in CPU
    time (the process's, so that the machine's other work does not count) as the best of
    three runs; median and max over ``pairs`` such windows, in milliseconds."""
    times = []
    for a, b in list(zip(records[::2], records[1::2], strict=False))[:pairs]:
        first = min(len(a.fhr) // RATE_HZ, TWO_HOURS - CTG_WINDOW_SECONDS)
        rest = TWO_HOURS - first
        fhr_bounds = VALUE_BOUNDS[Metric.FETAL_HEART_RATE]
        ua_bounds = (0, VALUE_BOUNDS[Metric.UTERINE_ACTIVITY][1])
        fhr = readings_grid(a.fhr, bounds=fhr_bounds, seconds=first) + readings_grid(
            b.fhr, bounds=fhr_bounds, seconds=rest
        )
        ua = readings_grid(a.uc, bounds=ua_bounds, seconds=first) + readings_grid(
            b.uc, bounds=ua_bounds, seconds=rest
        )
        best = math.inf
        for _ in range(3):
            began = time.process_time()
            ctg_analyse_series(fhr=fhr, ua=ua, start=0.0, end=float(TWO_HOURS), params=params)
            best = min(best, time.process_time() - began)
        times.append(1000 * best)
    if not times:
        return None
    return {"windows": len(times), "median": statistics.median(times), "max": max(times)}


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _mean_range(experts: dict[str, Any], name: str) -> str:
    """The experts' ``name``: "mean (lowest-highest)", or "-" without a range."""
    low_high = experts[f"{name}_range"]
    if not low_high:
        return "-"
    return f"{_f(experts[f'{name}_mean'])} ({_f(low_high[0])}-{_f(low_high[1])})"


def ctu_report(scores: dict[str, Any]) -> str:
    """The benchmark's figures as text (Markdown tables)."""
    lines = [
        f"CTU-UHB: {scores['records']} records; classified window {scores['window_seconds']} s, "
        f"preceding trace read {scores['lookback_seconds']} s",
        "",
        "| | " + " | ".join(f"step {s['step']}" for s in scores["steps"]) + " |",
        "|---|" + "---|" * len(scores["steps"]) + "",
    ]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    steps = scores["steps"]
    row("windows with expert classes", [str(s["windows"]) for s in steps])
    row("kappa vs experts' median", [_f(s["kappa"]) for s in steps])
    row("linear-weighted kappa vs experts' median", [_f(s["kappa_linear"]) for s in steps])
    row(
        "experts: kappa vs median of the others, mean (range)",
        [_mean_range(s["experts"], "kappa") for s in steps],
    )
    row(
        "experts: linear-weighted kappa, mean (range)",
        [_mean_range(s["experts"], "kappa_linear") for s in steps],
    )
    row("raw agreement", [_pct(s["agreement"]) for s in steps])
    row(
        "expert-pathological windows called normal",
        [
            f"{s['pathological_called_normal']} / {s['expert_pathological']} "
            f"({_pct(s['pathological_called_normal_share'])})"
            for s in steps
        ],
    )
    row("insufficient signal (scored as suspicious)", [str(s["insufficient"]) for s in steps])
    row(
        "pH < 7.05: sensitivity / specificity of pathological",
        [
            f"{_pct(s['sensitivity'])} / {_pct(s['specificity'])} (n={s['acidaemia']})"
            for s in steps
        ],
    )
    row(
        "experts' mean sensitivity / specificity",
        [
            f"{_pct(s['experts']['sensitivity_mean'])} / {_pct(s['experts']['specificity_mean'])}"
            for s in steps
        ],
    )
    row(
        "reading time per window (ctg_read, CPU), mean / max",
        [f"{_f(s['ms_per_window_mean'], 1)} / {_f(s['ms_per_window_max'], 1)} ms" for s in steps],
    )
    two = scores.get("two_hour_ms")
    if two:
        lines += [
            "",
            f"Analysis of a 2-hour window (ctg_analyse_series, CPU time, {two['windows']} "
            f"windows, best of 3 each): median {two['median']:.1f} ms, max {two['max']:.1f} ms",
        ]
    for s in steps:
        lines += [
            "",
            f"Step {s['step']} confusion matrix (rows: experts' median; columns: the analysis; "
            "normal, suspicious, pathological):",
        ]
        labels = ("normal", "suspicious", "pathological")
        for label, counts in zip(labels, s["confusion"] or [], strict=False):
            lines.append(f"  {label:<13}" + "".join(f"{c:>6}" for c in counts))
    return "\n".join(lines)
