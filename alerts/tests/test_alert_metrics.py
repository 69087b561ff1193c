"""Alarm metrics: alerts raised and acknowledged (counted once committed), the evaluator's
batches and delay, the readings stream's backlog, and delivery outcomes."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import services
from alerts.metrics import StreamBacklogCollector
from monitoring.readings import readings_store
from monitoring.stream.backlog import readings_queue
from notifications.delivery import alert_event_email
from testing.factories import ReadingInFactory
from testing.metrics import metric_value

pytestmark = pytest.mark.django_db

RAISED = "monitor_alerts_raised_total"


def _raise(patient, priority="high", kind="bradycardia"):
    return services.alert_raise(
        patient_id=patient.id, kind=kind, priority=priority, message=f"{kind} {priority}"
    )


def test_a_raise_is_counted_by_kind_and_priority_once_committed(
    patient, django_capture_on_commit_callbacks
):
    before = metric_value(RAISED, kind="bradycardia", priority="high")
    events_before = metric_value("monitor_alert_events_total", action="raised")
    with django_capture_on_commit_callbacks(execute=False) as pending:
        _raise(patient)
    assert metric_value(RAISED, kind="bradycardia", priority="high") == before  # not yet
    for callback in pending:
        callback()
    assert metric_value(RAISED, kind="bradycardia", priority="high") == before + 1
    assert metric_value("monitor_alert_events_total", action="raised") == events_before + 1

    # A repeat of the open alert is not a new raise.
    with django_capture_on_commit_callbacks(execute=True):
        _raise(patient)
    assert metric_value(RAISED, kind="bradycardia", priority="high") == before + 1


def test_acknowledgement_latency_is_observed_by_priority(
    patient, nurse, django_capture_on_commit_callbacks
):
    count = "monitor_alert_acknowledge_seconds_count"
    total = "monitor_alert_acknowledge_seconds_sum"
    before = (metric_value(count, priority="high"), metric_value(total, priority="high"))
    raised_at = timezone.now() - timedelta(seconds=42)
    with django_capture_on_commit_callbacks(execute=True):
        alert = services.alert_raise(
            patient_id=patient.id, kind="bradycardia", priority="high", message="x", at=raised_at
        )
        services.alert_acknowledge(
            alert_id=alert.id, user=nurse, at=raised_at + timedelta(seconds=30)
        )
    assert metric_value(count, priority="high") == before[0] + 1
    assert metric_value(total, priority="high") == pytest.approx(before[1] + 30)
    assert metric_value("monitor_alert_acknowledge_seconds_bucket", priority="high", le="30.0") >= 1


def test_evaluated_batches_move_the_evaluator_metrics(device, alarms_drain):
    readings_before = metric_value("monitor_evaluator_readings_total")
    batches_before = metric_value("monitor_evaluator_batch_seconds_count")
    delays_before = metric_value("monitor_evaluation_delay_seconds_count")
    now = timezone.now()
    readings_store(
        readings=[ReadingInFactory(device=device, recorded_at=now, seq=seq) for seq in (1, 2, 3)],
        queue=readings_queue,
    )
    assert alarms_drain() == 3
    assert metric_value("monitor_evaluator_readings_total") == readings_before + 3
    assert metric_value("monitor_evaluator_batch_seconds_count") == batches_before + 1
    assert metric_value("monitor_evaluation_delay_seconds_count") == delays_before + 1


def test_the_stream_backlog_collector_reports_what_waits_per_partition(
    device, alarms_drain, settings
):
    now = timezone.now()
    readings_store(
        readings=[ReadingInFactory(device=device, recorded_at=now, seq=s) for s in (1, 2)],
        queue=readings_queue,
    )
    partition = str(device.patient_id % settings.READINGS_STREAM_PARTITIONS)

    def samples() -> dict[tuple[str, str], float]:
        return {
            (family.name, sample.labels["partition"]): sample.value
            for family in StreamBacklogCollector().collect()
            for sample in family.samples
        }

    waiting = samples()
    assert waiting[("monitor_readings_awaiting_evaluation", partition)] == 2
    assert waiting[("monitor_readings_stream_length", partition)] == 2
    assert waiting[("monitor_readings_stream_partition_owned", partition)] == 0
    assert len([key for key in waiting if key[0] == "monitor_readings_stream_length"]) == int(
        settings.READINGS_STREAM_PARTITIONS
    )
    alarms_drain()
    assert samples()[("monitor_readings_awaiting_evaluation", partition)] == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_delivery_outcomes_are_counted_per_channel(patient, doctor, nurse, smtp_server, settings):
    sent = ("monitor_alert_deliveries_total", {"channel": "email", "outcome": "sent"})
    failed = ("monitor_alert_deliveries_total", {"channel": "email", "outcome": "failed"})
    before = (metric_value(sent[0], **sent[1]), metric_value(failed[0], **failed[1]))
    event = _raise(patient).events.get(action="raised")
    settings.EMAIL_PORT = _closed_port()
    assert alert_event_email(event_id=event.id) == 0
    assert metric_value(failed[0], **failed[1]) == before[1] + 2  # each recipient's attempt
    settings.EMAIL_PORT = smtp_server.port
    later = timezone.now() + timedelta(minutes=1)  # past the back-off
    assert alert_event_email(event_id=event.id, now=later) == 2
    assert metric_value(sent[0], **sent[1]) == before[0] + 2
