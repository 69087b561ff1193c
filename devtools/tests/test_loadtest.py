"""The benchmark: its statistics, its fixture, and a small end-to-end run against Daphne."""

from __future__ import annotations

import gc
import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from clinical.models import Device
from devtools.bench.collector import CollectorPauses
from devtools.bench.fixture import (
    fixture_counts,
    fixture_create,
    fixture_ctg_history,
    fixture_delete,
)
from devtools.bench.history import history_fill
from devtools.bench.stats import percentiles_ms
from monitoring.models import Reading
from testing.processes import PYTHON, ROOT


def test_collector_pauses_are_timed_per_generation_while_installed():
    with CollectorPauses() as pauses:
        gc.collect(0)
        gc.collect()
    gc.collect()  # not counted: the callback is removed
    result = pauses.result()
    assert result["generation_0"]["count"] >= 1
    assert result["generation_2"]["count"] == 1
    assert result["generation_2"]["total_ms"] >= result["generation_2"]["max_ms"] >= 0


def test_percentiles_use_nearest_rank_in_milliseconds():
    samples = [i / 1000 for i in range(1, 101)]  # 1..100 ms

    result = percentiles_ms(samples)

    assert result == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles_ms([]) == {"p50": None, "p95": None, "p99": None, "max": None}


@pytest.mark.django_db
def test_fixture_counts_stored_readings_per_ward_and_is_removed():
    fixture = fixture_create(devices=4, wards=2)
    first, second = fixture.devices[0], fixture.devices[1]
    assert first.ward_id != second.ward_id
    assert Device.objects.filter(id__in=fixture.device_ids).count() == 4
    # Two seconds of readings (seq 1 and 2) of the first device, written twice in one batch,
    # and one second (seq 1) of the second: three stored, the repeats not.
    history_fill(replace(fixture, devices=[first, first]), hours=2 / 3600, rate=1.0)
    history_fill(replace(fixture, devices=[second]), hours=1 / 3600, rate=1.0)

    counts = fixture_counts(fixture)

    assert counts["stored"] == 3
    assert counts["duplicates_stored"] == 0
    assert counts["per_ward"][first.ward_id] == 2
    assert counts["per_ward"][second.ward_id] == 1
    fixture_delete(fixture)
    assert not Device.objects.filter(id__in=fixture.device_ids).exists()
    assert not Reading.objects.filter(device_id__in=fixture.device_ids).exists()


@pytest.mark.django_db
def test_ctg_history_is_stored_without_a_device_and_not_counted_as_streamed():
    fixture = fixture_create(devices=2, wards=1)
    fetal = fixture.devices[1]
    assert fetal.metric == "fetal_heart_rate"
    end = datetime.now(UTC).replace(microsecond=500_000)
    onset = end.replace(microsecond=0) - timedelta(seconds=2)

    fixture_ctg_history(
        [fetal], end=end, deceleration_from=onset, deceleration_bpm=118, seconds=5, rate=4
    )

    rows = Reading.objects.filter(patient_id=fetal.patient_id).order_by("recorded_at")
    assert rows.count() == 20
    assert {r.device_id for r in rows} == {None}
    assert [r.value == 118 for r in rows] == [r.recorded_at >= onset for r in rows]
    assert sum(r.value == 118 for r in rows) == 10  # 2.5 s at 4 Hz
    assert fixture_counts(fixture)["stored"] == 0
    fixture_delete(fixture)
    assert not Reading.objects.filter(patient_id=fetal.patient_id).exists()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_small_load_end_to_end_counts_add_up(tmp_path, live_env):
    result = _loadtest(
        tmp_path,
        live_env,
        *("--spawn-server", "1", "--devices", "5", "--rate", "5", "--duration", "3"),
        *("--wards", "2", "--dashboards", "2"),
    )
    for key in (
        "sent",
        "acked",
        "stored",
        "duplicates_stored",
        "delivered",
        "expected_deliveries",
        "readings_per_s",
        "ack_ms",
        "e2e_ms",
        "server",
    ):
        assert key in result, key
    for key in ("ack_ms", "e2e_ms"):
        assert set(result[key]) == {"p50", "p95", "p99", "max"}
        assert result[key]["p99"] is not None
    assert result["server"]["peak_rss_mb"] > 0
    assert result["server"]["cpu_s"] > 0
    assert result["sent"] == 5 * 5 * 3
    assert result["sent"] == result["acked"] == result["stored"]
    assert result["duplicates_stored"] == 0
    assert result["rejected"] == 0
    assert result["expected_deliveries"] == result["stored"]  # 2 dashboards on 2 wards
    assert result["delivered"] == result["expected_deliveries"]
    assert result["database"] == connection.vendor
    # The generator's own collector pauses are reported (it tuned its collector first).
    assert result["generator_gc"]["tuned"] is True
    assert set(result["generator_gc"]) == {"tuned", "generation_0", "generation_1", "generation_2"}
    assert result["generator_gc"]["generation_2"]["count"] >= 0
    # The bench data is removed afterwards.
    assert not Device.objects.filter(serial__startswith="bench-").exists()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_alarm_latency_is_measured_from_the_reading_that_completes_the_hold(tmp_path, live_env):
    hold, deceleration = 8, 60
    result = _loadtest(
        tmp_path,
        live_env,
        *("--spawn-server", "2", "--evaluators", "2"),
        *("--devices", "6", "--rate", "4", "--duration", "24"),
        *("--wards", "2", "--dashboards", "2", "--abnormal", "0"),
        *("--episodes", "0.34", "--alarm-hold", str(hold)),
        *("--ctg-episodes", "0.17", "--ctg-deceleration", str(deceleration)),
    )
    vital = result["alarm_latency"]["vital"]
    # Two devices with one bradycardia episode each (the window has room for one), both
    # raised and seen by the dashboards of their wards (one on each server process).
    assert vital["episodes"] == 2
    assert vital["matched"] == 2
    assert vital["missed"] == 0
    assert vital["hold_seconds"] == [float(hold)]
    # Counted from the episode's onset every latency would be at least the hold time; from the
    # reading that completes the hold it is the evaluator's and the fan-out's delay.
    assert 0 < vital["latency_ms"]["p50"] <= vital["latency_ms"]["max"] < hold * 1000
    # One prolonged deceleration, begun in the stored history: from its reading that makes
    # it outlast the patient's prolonged_deceleration_seconds (plus the evaluation cadence).
    ctg = result["alarm_latency"]["ctg"]
    assert (ctg["episodes"], ctg["matched"], ctg["missed"]) == (1, 1, 0)
    assert ctg["hold_seconds"] == [float(deceleration)]
    assert 0 < ctg["latency_ms"]["max"] < deceleration * 1000
    assert result["alerts_raised"] >= 3
    # Two evaluators shared the stream's partitions (each logged its share of the 8).
    logs = [log.read_text() for log in sorted((tmp_path / "logs").glob("evaluator-*.log"))]
    assert len(logs) == 2
    assert all("of 8 (2 live evaluators)" in text for text in logs)


def _loadtest(tmp_path: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run ``manage.py loadtest ... --json`` as a user does; its result."""
    logs = str(tmp_path / "logs")
    completed = subprocess.run(
        [PYTHON, "manage.py", "loadtest", *args, "--json", "--quiet", "--log-dir", logs],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(completed.stdout)
    return result
