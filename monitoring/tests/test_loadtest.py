"""The benchmark: its statistics, its fixture, and a small end-to-end run against Daphne."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper
from django.utils import timezone

from clinical.models import Device
from monitoring import loadtest
from monitoring.ingest import ReadingIn, readings_store
from monitoring.models import Reading

ROOT = Path(__file__).resolve().parents[2]


def test_percentiles_use_nearest_rank_in_milliseconds():
    samples = [i / 1000 for i in range(1, 101)]  # 1..100 ms

    result = loadtest.percentiles_ms(samples)

    assert result == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert loadtest.percentiles_ms([]) == {"p50": None, "p95": None, "p99": None, "max": None}


@pytest.mark.django_db
def test_fixture_counts_stored_readings_per_ward_and_is_removed():
    fixture = loadtest.fixture_create(devices=4, wards=2)
    first, second = fixture.devices[0], fixture.devices[1]
    assert first.ward_id != second.ward_id
    assert Device.objects.filter(id__in=fixture.device_ids).count() == 4
    readings_store(
        readings=[
            ReadingIn(
                patient_id=dev.patient_id,
                device_id=dev.id,
                metric=dev.metric,
                bpm=140 if dev.metric == "fetal_heart_rate" else 80,
                recorded_at=timezone.now(),
                seq=seq,
            )
            for dev, seq in [(first, 1), (first, 2), (second, 1), (first, 2)]
        ]
    )

    counts = loadtest.fixture_counts(fixture)

    assert counts["stored"] == 3
    assert counts["duplicates_stored"] == 0
    assert counts["per_ward"][first.ward_id] == 2
    assert counts["per_ward"][second.ward_id] == 1
    loadtest.fixture_delete(fixture)
    assert not Device.objects.filter(id__in=fixture.device_ids).exists()
    assert not Reading.objects.filter(device_id__in=fixture.device_ids).exists()


def _bench_database(tmp_path: Path, env: dict[str, str]) -> str:
    """A database the spawned server can open: the test database, or a migrated SQLite file."""
    db = connections["default"]
    if isinstance(db, SQLiteDatabaseWrapper) and db.is_in_memory_db():
        url = f"sqlite:///{tmp_path / 'bench.sqlite3'}"
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env={**env, "DATABASE_URL": url},
            check=True,
            timeout=180,
        )
        return url
    return loadtest.database_url()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_small_load_end_to_end_counts_add_up(tmp_path):
    env = {**os.environ, "VAR_DIR": str(tmp_path)}
    env["DATABASE_URL"] = _bench_database(tmp_path, env)

    completed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "loadtest",
            "--spawn-server",
            "1",
            "--devices",
            "5",
            "--rate",
            "5",
            "--duration",
            "3",
            "--wards",
            "2",
            "--dashboards",
            "2",
            "--json",
            "--quiet",
            "--log-dir",
            str(tmp_path / "logs"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
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
    # The bench data is removed afterwards.
    assert not Device.objects.filter(serial__startswith="bench-").exists()
