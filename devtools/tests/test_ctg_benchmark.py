"""The CTG benchmark: its scoring on small cases known by hand, and the command on the
CTU-UHB recordings when they are present (CTG_BENCHMARK_DATA, default ../shared/data)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command

from ctg.analysis import PATHOLOGICAL, CtgResult
from ctg.params import CTG_LOOKBACK_SECONDS, CTG_WINDOW_SECONDS
from devtools.ctg_benchmark import (
    Analysed,
    Record,
    ctu_missing,
    expert_levels,
    kappa,
    median_class,
    readings_grid,
    step_scores,
    step_window,
)

DATA = Path(
    os.environ.get("CTG_BENCHMARK_DATA") or Path(settings.BASE_DIR).parent / "shared" / "data"
)


def test_median_class_is_the_middle_vote_and_the_lower_middle_for_an_even_count():
    assert median_class([1, 3, 3, 2, 1]) == 2
    assert median_class([3, 3, 1, 1]) == 1
    assert median_class([3]) == 3


def test_kappa_perfect_chance_and_a_known_value():
    assert kappa([1, 2, 3, 1], [1, 2, 3, 1]) == pytest.approx(1.0)
    # 2x2 by hand: po = 0.5, pe = 0.5 -> kappa 0.
    assert kappa([1, 1, 3, 3], [1, 3, 1, 3]) == pytest.approx(0.0)
    # A disagreement by one class counts fully unweighted, half linear-weighted.
    a, b = [1, 2, 3, 1, 2, 3], [1, 2, 3, 1, 2, 2]
    assert kappa(a, b, weights="linear") > kappa(a, b)


def test_readings_grid_drops_zeros_refuses_out_of_range_and_averages_per_second():
    # 3 seconds at 4 Hz, x 100: second 0 mixed with a zero, second 1 out of range, second 2 ok
    samples = np.array(
        [14000, 0, 14200, 14100, 30000, 3000, 0, 0, 12000, 12000, 12400, 12400], dtype=np.int16
    )
    grid = readings_grid(samples, bounds=(50, 240), seconds=4)
    assert grid == [pytest.approx(141.0), None, pytest.approx(122.0), None]


def _record(second_stage_s: int, length_s: int, **kw) -> Record:
    zeros = np.zeros(length_s * 4, dtype=np.int16)
    return Record("1", zeros, zeros, second_stage_s * 4, kw.get("ph"), kw.get("experts", {}))


def test_step_windows_end_at_the_second_stage_and_30_minutes_before():
    r = _record(7200, 9000)
    assert step_window(r, 2) == (7200 - CTG_WINDOW_SECONDS, 7200)
    assert step_window(r, 1) == (7200 - 2 * CTG_WINDOW_SECONDS, 7200 - CTG_WINDOW_SECONDS)
    # A recording that stops before the second stage: the window ends with the recording.
    assert step_window(_record(9000, 5000), 2) == (5000 - CTG_WINDOW_SECONDS, 5000)
    # A caesarean section in the first stage (no second stage, -1): the recording's end.
    r = _record(0, 5000)
    r.second_stage = -1
    assert step_window(r, 2) == (5000 - CTG_WINDOW_SECONDS, 5000)


def _result(cls: str) -> CtgResult:
    return CtgResult(0, 1800, None, None, [], [], [], None, 0.0, cls, [])


def test_step_scores_count_pathological_called_normal_and_acidaemia():
    experts = {2: {1: 3, 2: 3, 3: 2}}
    records = [
        _record(3600, 3600, ph=7.00, experts=experts),
        _record(3600, 3600, ph=7.30, experts={2: {1: 1, 2: 1, 3: 2}}),
    ]
    records[1].rec_id = "2"
    analysed = [
        Analysed("1", 2, _result("normal"), 0.001),
        Analysed("2", 2, _result(PATHOLOGICAL), 0.001),
    ]
    s = step_scores(records, analysed, 2)
    assert s["expert_pathological"] == 1
    assert s["pathological_called_normal"] == 1
    assert s["sensitivity"] == 0.0
    assert s["specificity"] == 0.0
    assert s["confusion"] == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]
    levels = expert_levels(records, 2)
    assert levels["experts"] == 3
    assert levels["sensitivity_mean"] == pytest.approx((1 + 1 + 0) / 3)


@pytest.mark.skipif(bool(ctu_missing(DATA)), reason=f"CTU-UHB data not found under {DATA}")
def test_the_command_scores_the_analysis_and_the_experts_on_ctu_uhb():
    out = io.StringIO()
    call_command("ctg_benchmark", "--data", str(DATA), "--limit", "30", "--json", stdout=out)
    scores = json.loads(out.getvalue())
    assert scores["records"] == 30
    assert scores["lookback_seconds"] == CTG_LOOKBACK_SECONDS
    for step in scores["steps"]:
        assert step["windows"] == 30
        assert sum(map(sum, step["confusion"])) == 30
        assert -1 <= step["kappa"] <= 1
        assert step["experts"]["experts"] == 9
        assert 0 < step["experts"]["kappa_mean"] < 1
        assert step["ms_per_window_mean"] > 0
    assert scores["two_hour_ms"]["windows"] == 15
    assert 0 < scores["two_hour_ms"]["median"] <= scores["two_hour_ms"]["max"]
    text = io.StringIO()
    call_command("ctg_benchmark", "--data", str(DATA), "--limit", "30", stdout=text)
    assert "kappa vs experts' median" in text.getvalue()
    assert "Analysis of a 2-hour window" in text.getvalue()
