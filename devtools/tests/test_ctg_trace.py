"""The simulator's cardiotocogram has the shape of a labour ward's: judged by the server's own
CTG analysis and by the generator's counts."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime

import pytest

from ctg.analysis import (
    INSUFFICIENT,
    NORMAL,
    PATHOLOGICAL,
    SUSPICIOUS,
    Series,
    ctg_analyse,
    maternal_coincidence_seconds,
)
from ctg.window import CTG_WINDOW, ctg_read
from devtools.ctg_trace import CtgConfig, CtgTrace
from devtools.simulator import (
    FETAL_EPISODE_RARITY,
    DeviceSpec,
    EpisodeConfig,
    SimulatedDevice,
    maternal_trace,
)

QUIET = {"long_loss_every": 0.0, "coincidence_every": 0.0, "deceleration_share": 0.0}


def generate(seconds: int, *, seed: int = 1, prolonged_every: float = 0.0, **config):
    rng = random.Random(seed)
    trace = CtgTrace(
        rng,
        maternal=maternal_trace(rng).next,
        prolonged_every=prolonged_every,
        config=CtgConfig(**config),
    )
    rows = [trace.next(float(t)) for t in range(seconds)]

    def samples(metric: str) -> list[tuple[float, float]]:
        return [(float(t), v) for t, row in enumerate(rows) if (v := row[metric]) is not None]

    return trace, rows, samples


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_quiet_labour_trace_is_a_normal_ctg(seed):
    trace, rows, samples = generate(3600, seed=seed, **QUIET)
    result = ctg_analyse(
        fhr=samples("fetal_heart_rate"), ua=samples("uterine_activity"), start=0, end=3600
    )
    assert result.classification == NORMAL, result.reasons
    assert result.baseline_bpm is not None and 120 <= result.baseline_bpm <= 155
    assert result.variability_bpm is not None and 5 <= result.variability_bpm <= 25
    assert result.contractions_per_10_min is not None
    assert 2.0 <= result.contractions_per_10_min <= 4.5
    assert abs(len(result.contractions) - trace.counts.contractions) <= 1
    assert len(result.accelerations) >= 3
    assert 3 <= result.signal_loss_percent <= 20  # short Doppler dropouts
    assert all(0 <= row["uterine_activity"] <= 100 for row in rows)
    assert all(50 <= v <= 240 for _, v in samples("fetal_heart_rate"))


def test_decelerations_come_with_contractions():
    trace, _rows, samples = generate(7200, seed=4, **{**QUIET, "deceleration_share": 1.0})
    result = ctg_analyse(
        fhr=samples("fetal_heart_rate"), ua=samples("uterine_activity"), start=0, end=7200
    )
    made = sum(trace.counts.decelerations.values())
    assert made == trace.counts.contractions
    assert set(trace.counts.decelerations) == {"early", "late", "variable"}
    assert len(result.decelerations) >= made // 2
    assert {d.kind for d in result.decelerations} & {"late", "variable"}


def test_prolonged_decelerations_follow_the_bradycardia_episodes():
    trace, _rows, samples = generate(3600, seed=5, prolonged_every=900, **QUIET)
    result = ctg_analyse(fhr=samples("fetal_heart_rate"), start=0, end=3600)
    assert trace.counts.decelerations.get("prolonged", 0) >= 2
    assert sum(d.prolonged for d in result.decelerations) >= 2


def test_a_long_signal_loss_happens_now_and_then():
    trace, rows, _samples = generate(3600, seed=6, **{**QUIET, "long_loss_every": 600.0})
    assert trace.counts.losses >= 3
    longest = run = 0
    for row in rows:
        run = run + 1 if row["fetal_heart_rate"] is None else 0
        longest = max(longest, run)
    assert longest >= 70  # enough to raise fhr_signal_loss (over 20 % of 5 minutes)
    assert all(row["uterine_activity"] is not None for row in rows)


def test_the_fetal_channel_sometimes_records_the_mother():
    trace, _rows, samples = generate(3600, seed=7, **{**QUIET, "coincidence_every": 600.0})
    assert trace.counts.coincidences >= 2
    fhr, mhr = samples("fetal_heart_rate"), samples("heart_rate")
    longest = max(
        maternal_coincidence_seconds(fhr=fhr, mhr=mhr, start=0, end=end)
        for end in range(300, 3600, 30)
    )
    assert longest > 60  # enough to raise fhr_maternal_coincidence


def test_an_obstetric_device_sends_all_three_channels_and_nothing_for_a_lost_second():
    device = SimulatedDevice(
        DeviceSpec(token="t", profile="obstetric"),
        url="ws://unused",
        rate=1.0,
        rng=random.Random(8),
        episodes=EpisodeConfig(enabled=False),
        first_seq=0,
    )
    assert device.ctg is not None
    device.ctg.loss_until = float("inf")  # the fetal signal is lost from now on
    device.produce()
    sent = list(device.unacked.values())
    assert {r["metric"] for r in sent} == {"heart_rate", "uterine_activity"}
    assert all(isinstance(r["value"], int) for r in sent)
    device.ctg.loss_until = -1.0
    device.ctg.next_dropout = device.ctg.next_long_loss = float("inf")
    device.ctg.next_coincidence = float("inf")
    device.produce()
    metrics = [r["metric"] for r in list(device.unacked.values())[len(sent) :]]
    assert sorted(metrics) == ["fetal_heart_rate", "heart_rate", "uterine_activity"]


def _float(value: int | None) -> float | None:
    return None if value is None else float(value)


def test_a_simulated_ward_reads_mostly_normal_and_suspicious():
    """Eight beds for two hours as the demo runs them, read as the product reads them
    (``ctg.window.ctg_read``, every 10 minutes): plausible baselines, contractions every 2-4
    minutes, and pathological readings the exception."""
    classes: list[str] = []
    baselines: list[int] = []
    rates: list[float] = []
    span = CTG_WINDOW.span_seconds
    for seed in range(8):
        rng = random.Random(100 + seed)
        trace = CtgTrace(
            rng,
            maternal=maternal_trace(rng).next,
            prolonged_every=EpisodeConfig().every * FETAL_EPISODE_RARITY,
            prolonged_seconds=EpisodeConfig().fetal_seconds,
        )
        assert 110 <= trace.baseline <= 160
        rows = [trace.next(float(t)) for t in range(7200)]
        before: Series = [None] * span  # nothing recorded before the monitor was attached
        fhr = before + [_float(row["fetal_heart_rate"]) for row in rows]
        ua = before + [_float(row["uterine_activity"]) for row in rows]
        for end in range(1800, 7201, 600):
            reading = ctg_read(
                fhr=fhr[end : end + span], ua=ua[end : end + span], start=end - span, end=end
            )
            result = reading.result
            classes.append(result.classification)
            if result.baseline_bpm is not None:
                baselines.append(result.baseline_bpm)
            if result.contractions_per_10_min is not None:
                rates.append(result.contractions_per_10_min)
    share = {c: classes.count(c) / len(classes) for c in set(classes)}
    assert share.get(NORMAL, 0) >= 0.5, share
    assert share.get(NORMAL, 0) + share.get(SUSPICIOUS, 0) >= 0.85, share
    assert share.get(PATHOLOGICAL, 0) <= 0.12, share
    assert share.get(INSUFFICIENT, 0) <= 0.05, share
    plausible = [b for b in baselines if 110 <= b <= 160]
    assert len(plausible) >= 0.9 * len(classes)
    assert sum(120 <= b <= 150 for b in baselines) >= 0.75 * len(baselines)
    assert statistics.median(rates) == pytest.approx(3.3, abs=0.8)  # every 2-4 minutes


def test_an_obstetric_monitor_can_start_with_recorded_history():
    def device(profile: str) -> SimulatedDevice:
        return SimulatedDevice(
            DeviceSpec(token="t", profile=profile),
            url="ws://unused",
            rate=1.0,
            rng=random.Random(9),
            episodes=EpisodeConfig(enabled=False),
            first_seq=0,
            history_seconds=600,
        )

    mother = device("obstetric")
    sent = list(mother.unacked.values())
    times = sorted({datetime.fromisoformat(r["recorded_at"]) for r in sent})
    assert len(times) == 600  # one moment per second of the history, queued to send
    assert (times[-1] - times[0]).total_seconds() == 599
    assert (datetime.now(UTC) - times[-1]).total_seconds() == pytest.approx(1, abs=1)
    assert [r["seq"] for r in sent] == sorted(r["seq"] for r in sent)
    assert {r["metric"] for r in sent} == {"heart_rate", "fetal_heart_rate", "uterine_activity"}
    # The live readings carry on from the end of the history, and an adult has none.
    mother.produce()
    assert datetime.fromisoformat(list(mother.unacked.values())[-1]["recorded_at"]) > times[-1]
    assert device("adult").unacked == {}
