"""The alarm evaluator as a real process (``manage.py alarms_evaluate``) against real Redis and
the real database: readings in the stream are evaluated exactly once in effect, across a
SIGKILL of the evaluator and while no evaluator runs.

Readings are stored with ``readings_store`` and appended with ``readings_queue`` in a
Django subprocess on the database the evaluator uses (testing.processes), as the ingest path
will. Hold times are measured on ``recorded_at``, so an episode of 35 bpm "for 20 s" is
appended at once with readings dated one second apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts import state
from monitoring.stream import entries as stream
from monitoring.stream.lag import PartitionLag, stream_lag
from testing.live import until
from testing.processes import Evaluator, django_run

LEASE_MS = 1000

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


@pytest.fixture
def live_env(live_env, clean_readings_stream) -> dict[str, str]:
    """Short leases, so a killed evaluator's partitions are taken over within a second."""
    return {**live_env, "READINGS_STREAM_LEASE_MS": str(LEASE_MS)}


@pytest.fixture
def evaluators(live_env, tmp_path) -> Iterator[list[Evaluator]]:
    started: list[Evaluator] = []
    yield started
    for process in started:
        process.stop()


def evaluator_start(
    started: list[Evaluator], env: dict[str, str], tmp_path: Path, name: str
) -> Evaluator:
    process = Evaluator(env, tmp_path / f"{name}.log", "--consumer", name, "--block-ms", "200")
    started.append(process)
    return process.wait_ready()


SEED = """
from testing.factories import DeviceFactory, PatientFactory
patient = PatientFactory(monitoring_profile="adult")
device = DeviceFactory(patient=patient)
result = {"patient": patient.id, "ward": patient.ward_id, "device": device.id}
"""

APPEND = """
from datetime import datetime, timedelta
from monitoring.readings import ReadingIn, readings_store
from monitoring.stream.backlog import readings_queue
start = datetime.fromisoformat(START)
stored = readings_store(
    readings=[
        ReadingIn(patient_id=PATIENT, device_id=DEVICE, metric="heart_rate", value=35,
                  recorded_at=start + timedelta(seconds=s), seq=s + 1)
        for s in SECONDS
    ],
    wards={PATIENT: WARD},
)
for reading in stored:  # a second apart, as a 1 Hz monitor's flushes: an entry each
    readings_queue([reading])
result = len(stored)
"""

ALERTS = """
from alerts.models import Alert, AlertEvent
result = {
    "alerts": [
        [a.kind, a.priority, a.state] for a in Alert.objects.filter(patient_id=PATIENT)
    ],
    "raised": AlertEvent.objects.filter(alert__patient_id=PATIENT, action="raised").count(),
}
"""


def append(env: dict[str, str], data: dict[str, Any], start: datetime, seconds: range) -> None:
    code = (
        f"PATIENT, WARD, DEVICE = {data['patient']}, {data['ward']}, {data['device']}\n"
        f"START, SECONDS = {start.isoformat()!r}, {list(seconds)!r}\n" + APPEND
    )
    assert django_run(env, code) == len(seconds)


def alerts(env: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    return django_run(env, f"PATIENT = {data['patient']}\n" + ALERTS)


def partition_lag(data: dict[str, Any]) -> PartitionLag:
    return stream_lag_of(stream.partition_of(data["patient"]))


def stream_lag_of(partition: int) -> PartitionLag:
    return stream_lag()[partition]


def evaluated(data: dict[str, Any]) -> bool:
    row = partition_lag(data)
    return row.length > 0 and row.lag == 0 and row.pending == 0


async def test_a_killed_evaluator_is_replaced_and_the_episode_raises_one_alert(
    live_env, evaluators, tmp_path
):
    data = await asyncio.to_thread(django_run, live_env, SEED)
    start = datetime.now(UTC) - timedelta(seconds=30)
    first = evaluator_start(evaluators, live_env, tmp_path, "evaluator-a")

    # The first 6 s of 35 bpm: under the 10 s hold time, the band has started, nothing raised.
    append(live_env, data, start, range(0, 6))
    band = state.state_key(data["patient"], "heart_rate")
    await until(lambda: evaluated(data) and state.redis_client().exists(band), 30, "evaluation")
    assert alerts(live_env, data) == {"alerts": [], "raised": 0}

    first.kill()  # SIGKILL: no release, the leases run out by themselves
    assert partition_lag(data).owner == "evaluator-a"
    # The next seconds of the episode arrive; the killed process had read three of them and
    # died before acknowledging them (a read done here under its name: a kill cannot be aimed
    # between a read and an acknowledgement).
    append(live_env, data, start, range(6, 14))
    key = stream.partition_key(stream.partition_of(data["patient"]))
    stream.redis_client().xreadgroup(stream.GROUP, "evaluator-a", {key: ">"}, count=3)
    assert partition_lag(data).pending == 3
    append(live_env, data, start, range(14, 21))

    evaluator_start(evaluators, live_env, tmp_path, "evaluator-b")
    await until(lambda: alerts(live_env, data)["alerts"], 60, "the alert after the takeover")
    await until(lambda: evaluated(data), 30, "the rest of the stream")
    assert partition_lag(data).owner == "evaluator-b"
    assert alerts(live_env, data) == {"alerts": [["bradycardia", "high", "active"]], "raised": 1}


async def test_readings_wait_in_the_stream_while_no_evaluator_runs(live_env, evaluators, tmp_path):
    data = await asyncio.to_thread(django_run, live_env, SEED)
    start = datetime.now(UTC) - timedelta(seconds=25)
    append(live_env, data, start, range(0, 21))

    row = partition_lag(data)
    assert (row.length, row.lag, row.pending, row.owner) == (21, 21, 0, None)
    assert alerts(live_env, data) == {"alerts": [], "raised": 0}

    late = evaluator_start(evaluators, live_env, tmp_path, "evaluator-late")
    await until(lambda: alerts(live_env, data)["alerts"], 60, "the alert")
    await until(lambda: evaluated(data), 30, "the stream to be evaluated")
    assert alerts(live_env, data) == {"alerts": [["bradycardia", "high", "active"]], "raised": 1}

    late.stop()  # SIGTERM: a clean stop gives the partitions back at once
    assert late.process.returncode == 0
    assert {row.owner for row in stream_lag()} == {None}
