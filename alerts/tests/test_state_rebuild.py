"""The alarm rules' state is a cache (alerts/state_rebuild.py): lost with a Redis restarted
empty or flushed, or unknown to a restarted evaluator, it is rebuilt from the stored readings
and the open alerts, so an alert still resolves when the rate recovers, a new episode raises a
new alert, and a hold time is not restarted. Controlled time: each reading's recorded_at is
given; the readings are stored rows, as the evaluator's are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.batch_evaluation import alarms_evaluate
from alerts.models import Alert
from alerts.state_rebuild import trust_reset
from monitoring.models import Reading
from monitoring.readings import StoredReading
from testing.factories import StoredReadingFactory
from testing.metrics import metric_value
from testing.redis_state import alarm_state_clear

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_alarm_state")]


def stored(patient, bpm: int, second: float) -> StoredReading:
    at = T0 + timedelta(seconds=second)
    row = Reading.objects.create(
        patient=patient, metric="heart_rate", value=bpm, recorded_at=at, received_at=at
    )
    return StoredReadingFactory(id=row.id, patient=patient, value=bpm, recorded_at=at)


def run(patient, bpm: int, start: float, end: float, step: float = 1.0) -> list[Alert]:
    """Store and evaluate one reading every ``step`` seconds, as the evaluator would."""
    changed: list[Alert] = []
    second = start
    while second <= end + 1e-9:
        reading = stored(patient, bpm, second)
        changed += alarms_evaluate(stored=[reading], now=reading.recorded_at)
        second += step
    return changed


def raised_at(patient, kind: str = "bradycardia") -> list[float]:
    return [
        (a.raised_at - T0).total_seconds()
        for a in Alert.objects.filter(patient=patient, kind=kind).order_by("raised_at")
    ]


@pytest.fixture
def adult(patient, settings):
    """Adult defaults: bradycardia high at or below 40 bpm held 10 s; cleared after 5 s."""
    settings.ALARM_CLEAR_SECONDS = 5
    patient.monitoring_profile = "adult"
    patient.save(update_fields=["monitoring_profile"])
    return patient


def test_redis_emptied_after_a_raise_the_alert_resolves_and_a_new_episode_raises_anew(adult):
    run(adult, 35, 0, 12)
    assert raised_at(adult) == [10.0]
    resets = metric_value("monitor_alarm_state_resets_total")
    alarm_state_clear()  # 3 s after the raise: Redis restarted empty
    run(adult, 75, 13, 30)
    (first,) = Alert.objects.filter(patient=adult)
    assert first.state == "resolved" and first.resolved_at is not None
    assert (first.resolved_at - T0).total_seconds() == 18.0  # 13 + the 5 s clear time
    assert metric_value("monitor_alarm_state_resets_total") == resets + 1
    run(adult, 35, 60, 75)
    assert raised_at(adult) == [10.0, 70.0]  # within its hold time, not absorbed


@pytest.mark.parametrize("lost_at", [5.0, 9.5])
def test_redis_emptied_mid_episode_does_not_restart_the_hold_time(adult, lost_at):
    run(adult, 35, 0, lost_at, step=0.5)
    assert raised_at(adult) == []
    alarm_state_clear()  # a restart of Redis without its data, or FLUSHALL
    run(adult, 35, lost_at + 0.5, 20, step=0.5)
    assert raised_at(adult) == [10.0]


def test_a_restarted_evaluator_keeps_the_hold_time(adult):
    run(adult, 35, 0, 6)
    trust_reset()  # a new evaluator process: it trusts no cached state yet
    run(adult, 35, 7, 12)
    assert raised_at(adult) == [10.0]


def test_an_open_alert_whose_condition_ended_while_redis_was_away_resolves(adult):
    run(adult, 35, 0, 11)
    alarm_state_clear()
    # The rate came back while nothing was evaluated (the evaluator was stopped); the
    # readings are stored.
    for second in range(12, 20):
        stored(adult, 75, second)
    run(adult, 75, 20, 21)
    (alert,) = Alert.objects.filter(patient=adult)
    assert alert.state == "resolved"


def test_a_steady_normal_patient_costs_no_replay(adult, django_assert_num_queries):
    run(adult, 75, 0, 2)
    alarm_state_clear()
    reading = stored(adult, 75, 3)
    # The profile, the limits, the open alerts: no readings are read back.
    with django_assert_num_queries(3):
        assert alarms_evaluate(stored=[reading], now=reading.recorded_at) == []
