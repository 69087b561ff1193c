"""``manage.py ctg_benchmark_maternal`` on the FHRMA false-signal training set, when present."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from devtools.maternal_benchmark import (
    FALSE,
    LABELS_NAME,
    NPZ_NAME,
    TRUE,
    before_scorer,
    detector_scorer,
    recordings_load,
    score,
    window_timing,
)

DATA = Path(os.environ.get("CTG_BENCHMARK_DATA", "/work/shared/data"))


needs_data = pytest.mark.skipif(
    not all((DATA / name).is_file() for name in (NPZ_NAME, LABELS_NAME)),
    reason=f"the benchmark data is missing from {DATA} (set CTG_BENCHMARK_DATA)",
)


@needs_data
def test_the_command_prints_the_figures_of_each_scorer():
    out = io.StringIO()
    call_command("ctg_benchmark_maternal", "--data", str(DATA), "--limit", "30", stdout=out)
    text = out.getvalue()
    for scorer in ("before", "detector", "confirmed", "excluded"):
        for part in ("all", "even records", "odd records"):
            assert f"{scorer} [{part}, " in text
    figures = re.findall(r"sensitivity ([\d.]+) %, positive predictive value ([\d.]+) %", text)
    assert len(figures) == 12
    assert "false flags per hour of true signal" in text
    assert "false-signal episodes of a minute or more flagged" in text


@needs_data
def test_the_detector_finds_what_the_old_condition_missed():
    recordings = recordings_load(DATA)[:60]
    labels = {label for rec in recordings for label in rec.labels}
    assert {FALSE, TRUE} <= labels
    before, after = score(recordings, before_scorer), score(recordings, detector_scorer)
    assert before.false_seconds == after.false_seconds > 0
    assert after.sensitivity > before.sensitivity + 0.3
    assert after.episode_share > before.episode_share + 0.3
    assert after.ppv > 0.7


@needs_data
def test_the_detector_is_timed_on_two_hour_windows_with_the_maternal_channel():
    recordings = [rec for rec in recordings_load(DATA) if len(rec.fhr) >= 7200][:20]
    times = window_timing(recordings)
    assert times and all(t > 0 for t in times)


def test_a_missing_data_directory_is_refused(tmp_path):
    with pytest.raises(CommandError, match=NPZ_NAME):
        call_command("ctg_benchmark_maternal", "--data", str(tmp_path))
