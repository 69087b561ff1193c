"""The alarm rules' state survives a Redis that restarts empty or is flushed, against a real
alarm evaluator process on a Redis of the test's own (``-m live``): readings are stored and
queued by this process (the synchronous ingest service, as REST and HL7 do) every 0.25 s with
the wall clock's recorded_at, and the evaluator evaluates them. Adult bradycardia: at or below
40 bpm held 10 s; cleared after 5 s back in range."""

from __future__ import annotations

import signal
import time
from datetime import datetime

import pytest
from django.db import connection
from django.utils import timezone

from alerts.models import Alert, EvaluationCheckpoint
from monitoring.services import readings_ingest
from monitoring.stream.entries import partition_of
from testing.factories import DeviceFactory, PatientFactory, ReadingInFactory, WardFactory
from testing.processes import Evaluator
from testing.redis_outage import settings_point_at

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
    # This process stores the readings the evaluator reads: one database for both.
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (DATABASE_URL): the test and the evaluator share it",
    ),
]

HOLD = 10.0
PERIOD = 0.25


class Monitor:
    """One device of one adult patient, sending a reading every PERIOD seconds."""

    def __init__(self) -> None:
        self.patient = PatientFactory(ward=WardFactory(), monitoring_profile="adult")
        self.device = DeviceFactory(patient=self.patient)
        self.seq = 0

    def send(self, bpm: int) -> datetime:
        self.seq += 1
        at = timezone.now()
        try:
            readings_ingest(
                readings=[
                    ReadingInFactory(device=self.device, value=bpm, recorded_at=at, seq=self.seq)
                ]
            )
        except Exception:  # Redis away at the wrong moment: a device would send it again
            self.seq -= 1
        return at

    def stream(self, bpm: int, seconds: float, until=None) -> datetime:
        """Send ``bpm`` for ``seconds`` (or until ``until()``); when the first was recorded."""
        first = None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            at = self.send(bpm)
            first = first or at
            if until is not None and until():
                break
            time.sleep(PERIOD)
        assert first is not None
        return first

    def alerts(self) -> list[Alert]:
        return list(Alert.objects.filter(patient=self.patient, kind="bradycardia").order_by("id"))


@pytest.fixture
def evaluator(live_env, stoppable_redis, settings, tmp_path):
    settings_point_at(settings, stoppable_redis.url)
    settings.ALARM_CLEAR_SECONDS = 5
    env = {**live_env, "REDIS_URL": stoppable_redis.url, "ALARM_CLEAR_SECONDS": "5"}
    process = Evaluator(env, tmp_path / "evaluator.log", "--block-ms", "200").wait_ready()
    yield process
    process.stop()


def test_redis_restarted_empty_after_a_raise_resolves_and_raises_anew(stoppable_redis, evaluator):
    monitor = Monitor()
    start = monitor.stream(35, 40, until=lambda: bool(monitor.alerts()))
    (first,) = monitor.alerts()
    assert (first.raised_at - start).total_seconds() <= HOLD + 5
    monitor.stream(35, 3)
    stoppable_redis.stop()
    stoppable_redis.start()  # empty, as a Redis without persistence comes back
    monitor.stream(75, 40, until=lambda: monitor.alerts()[0].state == "resolved")
    assert monitor.alerts()[0].state == "resolved", evaluator.logs()
    assert b"alarm rule state in Redis was lost" in evaluator.output()
    again = monitor.stream(35, 40, until=lambda: len(monitor.alerts()) == 2)
    second = monitor.alerts()[1]
    assert (second.raised_at - again).total_seconds() <= HOLD + 5, evaluator.logs()


@pytest.mark.parametrize("lost_at", [5.0, 9.5])
@pytest.mark.parametrize("how", ["restart", "flushall"])
def test_redis_lost_mid_episode_raises_within_the_hold_time(
    stoppable_redis, evaluator, lost_at, how
):
    import redis

    monitor = Monitor()
    start = monitor.stream(35, lost_at)
    if how == "restart":
        stoppable_redis.stop()
        stoppable_redis.start()
    else:
        redis.Redis.from_url(stoppable_redis.url).flushall()
    monitor.stream(35, 30, until=lambda: bool(monitor.alerts()))
    (alert,) = monitor.alerts()
    assert (alert.raised_at - start).total_seconds() <= HOLD + 5, evaluator.logs()


def test_readings_redis_lost_while_the_evaluator_was_paused_are_evaluated_from_the_database(
    stoppable_redis, evaluator
):
    """The evaluator is paused (SIGSTOP) through an episode whose readings are stored and
    appended to the stream; Redis restarts empty (the entries are gone); the evaluator resumes:
    it finds the consumer group gone, logs it, and evaluates the readings stored since its
    checkpoint from the database. Raised within 30 s of the resume."""
    monitor = Monitor()
    partition = partition_of(monitor.patient.id)
    monitor.stream(
        75, 30, until=lambda: EvaluationCheckpoint.objects.filter(partition=partition).exists()
    )
    assert EvaluationCheckpoint.objects.filter(partition=partition).exists(), evaluator.logs()
    evaluator.process.send_signal(signal.SIGSTOP)
    try:
        monitor.stream(35, HOLD + 5)  # the whole episode while nobody evaluates
        stoppable_redis.stop()
        stoppable_redis.start()  # empty: the episode's stream entries are lost
        monitor.stream(75, 1)
    finally:
        evaluator.process.send_signal(signal.SIGCONT)
    resumed = timezone.now()
    monitor.stream(75, 40, until=lambda: bool(monitor.alerts()))
    alerts = monitor.alerts()
    assert alerts, evaluator.logs()
    assert (alerts[0].raised_at - resumed).total_seconds() <= 30, evaluator.logs()
    output = evaluator.output()
    assert b"lost their consumer group" in output  # the reset, at ERROR
    assert b"evaluated from the database" in output  # raised through the checkpoint
