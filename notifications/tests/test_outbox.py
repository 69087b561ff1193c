"""The deliveries outbox: every transport in one registry, each delivery its own task (the
channels independent), claims that make a redelivered task send nothing twice, and a delivery
that fails for good raising a technical alarm visible on the ward, in /readyz and /metrics.
Real servers: SMTP (aiosmtpd), an HTTP webhook receiver, an MLLP alert manager."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import services
from alerts.models import Alert
from alerts.vocabulary import KIND_DELIVERY_FAILED
from config.net import free_port
from monitoring.live.groups import ward_group
from notifications.delivery import delivery_attempt
from notifications.models import AlertNotification
from notifications.tasks import notification_deliver
from notifications.transports import TRANSPORTS
from testing.hl7 import alert_manager as alert_manager
from testing.live_events import live_events
from testing.metrics import metric_value, scraped_value

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_channel(place, alert_manager, webhook_server):
    """The place has a webhook and an HL7 alert manager besides its staff's e-mail."""
    place.webhook_url, place.webhook_secret = webhook_server.url, "k"
    place.alert_manager_host, place.alert_manager_port = alert_manager.host, alert_manager.port
    place.save()
    return place


def raise_alert(patient):
    return services.alert_raise(
        patient_id=patient.id,
        kind="bradycardia",
        priority="high",
        message="Bradycardia: heart rate 35 bpm for 10 s.",
    )


def test_every_transport_is_in_one_registry():
    assert set(TRANSPORTS) == {"email", "webhook", "hl7"}
    assert {channel for channel, _ in AlertNotification.Channel.choices} == set(TRANSPORTS)


def test_with_smtp_down_the_webhook_and_the_page_go_out_at_once(
    every_channel,
    patient,
    nurse,
    smtp_server,
    settings,
    webhook_server,
    alert_manager,
    celery_eager,
    django_capture_on_commit_callbacks,
):
    settings.EMAIL_PORT = free_port()  # nothing listens: SMTP is down
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert(patient)
    assert len(webhook_server.requests) == 1
    assert len(alert_manager.received) == 1
    rows = {r.channel: r for r in AlertNotification.objects.filter(event__alert=alert)}
    assert (rows["webhook"].state, rows["hl7"].state) == ("sent", "sent")
    assert (rows["email"].state, rows["email"].attempts) == ("pending", 1)
    assert rows["email"].next_attempt_at > timezone.now()


def test_a_redelivered_task_sends_nothing_twice(patient, nurse, smtp_server, celery_eager):
    raise_alert(patient)
    (row,) = _planned(patient)
    assert notification_deliver.delay(row.pk).get() == "sent"
    assert notification_deliver.delay(row.pk).get() == "skipped"  # the broker's redelivery
    assert len(smtp_server.to(nurse.email)) == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == ("sent", 1)


def _planned(patient):
    from notifications.delivery import deliveries_plan

    event = Alert.objects.get(patient=patient).events.get()
    return list(AlertNotification.objects.filter(pk__in=deliveries_plan(event=event)))


def test_a_delivery_that_fails_for_good_raises_a_technical_alarm_on_the_ward(
    place, patient, webhook_server, settings, client, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    place.webhook_url, place.webhook_secret = webhook_server.url, "k"
    place.save()
    webhook_server.status = 503
    raise_alert(patient)
    (row,) = _planned(patient)
    gave_up = metric_value("monitor_alert_deliveries_total", channel="webhook", outcome="gave_up")

    assert delivery_attempt(notification_id=row.pk).outcome == "retry"
    assert client.get("/readyz").json()["checks"]["deliveries"] == "ok"
    later = timezone.now() + timedelta(minutes=1)
    with live_events(ward_group(patient.ward_id)) as live:
        with django_capture_on_commit_callbacks(execute=True):
            assert delivery_attempt(notification_id=row.pk, now=later).outcome == "failed"
        _, shown = live.next()  # the ward's dashboards are told at once
    assert (shown["type"], shown["action"]) == ("alert.event", "raised")
    assert shown["alert"]["kind"] == KIND_DELIVERY_FAILED

    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error) == ("failed", 2, "webhook answered 503")
    technical = Alert.objects.get(patient=patient, kind=KIND_DELIVERY_FAILED)
    assert technical.state == "active" and technical.priority == "medium"
    assert technical.message.startswith(f"Alarm page to {webhook_server.url} (webhook)")
    assert "could not be delivered" in technical.message
    # Its own deliveries failing (the same webhook) raise nothing more.
    (own,) = AlertNotification.objects.filter(event__alert=technical)
    assert delivery_attempt(notification_id=own.pk).outcome == "retry"
    assert delivery_attempt(notification_id=own.pk, now=later).outcome == "failed"
    assert Alert.objects.filter(kind=KIND_DELIVERY_FAILED).count() == 1

    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded"
    assert body["checks"]["deliveries"].startswith(f"failed: alarm page to {webhook_server.url}")
    assert body["degraded"] == ["deliveries"]
    after = metric_value("monitor_alert_deliveries_total", channel="webhook", outcome="gave_up")
    assert after == gave_up + 2
    scraped = client.get("/metrics").content.decode()
    exported = scraped_value(
        scraped, "monitor_alert_deliveries_total", channel="webhook", outcome="gave_up"
    )
    assert exported is not None and exported >= 2


def test_a_permanent_refusal_is_given_up_at_once(place, patient, nurse, settings):
    from notifications.transports import TransportError, WebhookTransport

    class Refusing(WebhookTransport):
        def send(self, event, recipient, *, delivery_id):
            raise TransportError("410 gone", permanent=True)

    settings.NOTIFICATION_MAX_ATTEMPTS = 20
    place.webhook_url = "http://127.0.0.1:9/gone"
    place.save()
    original = TRANSPORTS["webhook"]
    TRANSPORTS["webhook"] = Refusing()
    try:
        raise_alert(patient)
        row = next(r for r in _planned(patient) if r.channel == "webhook")
        assert delivery_attempt(notification_id=row.pk).outcome == "failed"
    finally:
        TRANSPORTS["webhook"] = original
    assert Alert.objects.filter(patient=patient, kind=KIND_DELIVERY_FAILED).exists()


def test_pending_deliveries_nobody_works_make_readiness_degraded(patient, nurse, client, settings):
    settings.NOTIFICATION_OVERDUE_SECONDS = 120
    raise_alert(patient)
    (row,) = _planned(patient)
    AlertNotification.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=121)
    )
    checks = client.get("/readyz").json()["checks"]
    assert checks["deliveries"] == "overdue: 1 alarm deliveries wait to be sent"


def test_the_upgrade_keeps_recent_unsent_rows_due_and_never_resends_stale_ones(patient, nurse):
    import importlib

    from django.apps import apps

    upgrade = importlib.import_module("notifications.migrations.0004_outbox")
    event = raise_alert(patient).events.get()
    now = timezone.now()
    rows = {
        name: AlertNotification.objects.create(
            event=event, channel="email", recipient=f"{name}@example.org", **fields
        )
        for name, fields in {
            "sent": {"sent_at": now, "created_at": now - timedelta(hours=2)},
            "recent": {"created_at": now - timedelta(minutes=5)},
            "stale": {"created_at": now - timedelta(hours=2)},
        }.items()
    }
    upgrade._states_from_rows(apps, None)
    states = {name: AlertNotification.objects.get(pk=row.pk) for name, row in rows.items()}
    assert states["sent"].state == "sent"
    assert states["recent"].state == "pending"
    assert states["stale"].state == "failed"
    assert states["stale"].failed_at == rows["stale"].created_at
