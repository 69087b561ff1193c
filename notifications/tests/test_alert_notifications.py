"""Alert fan-out: e-mail through a real SMTP server, signed webhooks to a real HTTP server,
dashboard events through the real Redis channel layer; idempotent and retried."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Role
from alerts import services
from alerts.tasks import alerts_escalation_scan
from monitoring.live.groups import patient_group, ward_group
from notifications.delivery import alert_event_email, alert_event_webhook
from notifications.models import AlertNotification
from notifications.selectors import alert_events_unplanned, deliveries_due
from notifications.tasks import alert_event_notify
from notifications.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from testing.factories import PatientFactory, UserFactory
from testing.live_events import live_events
from testing.webhooks import webhook_verify

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def raise_alert(patient, priority="high", at=None):
    return services.alert_raise(
        patient_id=patient.id,
        kind="bradycardia",
        priority=priority,
        message="Bradycardia: heart rate 38 bpm (at or below 40) for 12 s.",
        at=at,
    )


@pytest.fixture
def staff(place, doctor, nurse, admin_user):
    return {"doctor": doctor, "nurse": nurse, "admin": admin_user}


# --- E-mail -----------------------------------------------------------------------------------


def test_a_raise_emails_each_doctor_and_nurse_of_the_place_once(
    patient, staff, smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert(patient)
    assert len(smtp_server.to(staff["doctor"].email)) == 1
    assert len(smtp_server.to(staff["nurse"].email)) == 1
    assert smtp_server.to(staff["admin"].email) == []
    message = smtp_server.to(staff["nurse"].email)[0]
    assert "[HIGH]" in message["Subject"] and patient.name in message["Subject"]
    assert "38 bpm" in message.get_payload()

    # The task runs again (a redelivery, a retry): nobody is e-mailed twice.
    event = alert.events.get(action="raised")
    assert alert_event_notify.delay(event.id).get() == 0  # nothing left to queue
    assert alert_event_email(event_id=event.id) == 0
    assert len(smtp_server.messages) == 2
    assert AlertNotification.objects.filter(event=event, sent_at__isnull=False).count() == 2


def test_acknowledge_and_resolve_are_not_emailed(
    patient, staff, smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert(patient)
    with django_capture_on_commit_callbacks(execute=True):
        services.alert_acknowledge(alert_id=alert.id, user=staff["nurse"])
        services.alert_resolve(alert_id=alert.id, user=staff["nurse"])
    assert len(smtp_server.messages) == 2


def test_a_failed_send_is_recorded_and_the_retry_sends_only_the_rest(
    patient, staff, smtp_server, settings
):
    alert = raise_alert(patient)
    event = alert.events.get(action="raised")
    settings.EMAIL_PORT = _closed_port()
    before = datetime.now(UTC)
    assert alert_event_email(event_id=event.id) == 0
    failed = AlertNotification.objects.get(event=event, recipient=staff["doctor"].email)
    assert (failed.state, failed.sent_at, failed.attempts) == ("pending", None, 1)
    assert failed.last_error
    # Due again after its back-off (2 s, up to 10 % jitter), not at once.
    assert 2 <= (failed.next_attempt_at - before).total_seconds() < 3
    settings.EMAIL_PORT = smtp_server.port
    assert alert_event_email(event_id=event.id) == 0
    later = failed.next_attempt_at + timedelta(seconds=1)
    assert alert_event_email(event_id=event.id, now=later) == 2
    assert alert_event_email(event_id=event.id, now=later) == 0
    assert len(smtp_server.to(staff["doctor"].email)) == 1


def test_the_back_off_doubles_up_to_its_ceiling(settings):
    from notifications.delivery import retry_delay

    settings.NOTIFICATION_RETRY_FIRST_SECONDS = 2
    settings.NOTIFICATION_RETRY_MAX_SECONDS = 60
    delays = [retry_delay(attempts) for attempts in range(1, 9)]
    for delay, expected in zip(delays, [2, 4, 8, 16, 32, 60, 60, 60], strict=True):
        assert expected <= delay <= expected * 1.1


def test_escalation_emails_the_places_admins_until_acknowledged(
    patient, staff, smtp_server, celery_eager, django_capture_on_commit_callbacks, settings
):
    settings.ALERT_ESCALATION_SECONDS = 0  # due at once (the timing is tested in clinical)
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert(patient, at=datetime.now(UTC) - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_escalation_scan.delay().get() == 1
    (message,) = smtp_server.to(staff["admin"].email)
    assert "UNACKNOWLEDGED" in message["Subject"]
    with django_capture_on_commit_callbacks(execute=True):
        services.alert_acknowledge(alert_id=alert.id, user=staff["doctor"])
        assert alerts_escalation_scan.delay().get() == 0
    assert len(smtp_server.to(staff["admin"].email)) == 1


def test_place_admins_take_the_escalation_from_global_admins(
    patient, staff, smtp_server, celery_eager, django_capture_on_commit_callbacks, settings
):
    local_admin = UserFactory(role=Role.ADMIN, places=[patient.place], email="head@example.org")
    settings.ALERT_ESCALATION_SECONDS = 0
    raise_alert(patient, at=datetime.now(UTC) - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        alerts_escalation_scan.delay().get()
    assert len(smtp_server.to(local_admin.email)) == 1
    assert smtp_server.to(staff["admin"].email) == []


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Webhook ----------------------------------------------------------------------------------


def test_events_are_posted_to_the_places_webhook_with_a_valid_signature(
    patient, webhook_server, celery_eager, django_capture_on_commit_callbacks, nurse
):
    place = patient.place
    place.webhook_url = f"http://127.0.0.1:{webhook_server.server_port}/hooks/alerts"
    place.webhook_secret = "s3cret-key"
    place.save(update_fields=["webhook_url", "webhook_secret"])
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert(patient)
    with django_capture_on_commit_callbacks(execute=True):
        services.alert_acknowledge(alert_id=alert.id, user=nurse)

    assert len(webhook_server.requests) == 2
    headers, body = webhook_server.requests[0]
    assert webhook_verify(
        secret="s3cret-key",
        timestamp=headers[TIMESTAMP_HEADER],
        body=body,
        signature=headers[SIGNATURE_HEADER],
    )
    assert not webhook_verify(
        secret="wrong",
        timestamp=headers[TIMESTAMP_HEADER],
        body=body,
        signature=headers[SIGNATURE_HEADER],
    )
    payload = json.loads(body)
    assert payload["event"]["action"] == "raised"
    assert payload["alert"]["id"] == alert.id and payload["alert"]["kind"] == "bradycardia"
    assert json.loads(webhook_server.requests[1][1])["event"]["action"] == "acknowledged"

    # Redelivery posts nothing again.
    assert alert_event_webhook(event_id=alert.events.get(action="raised").id) is False
    assert len(webhook_server.requests) == 2


def test_a_refused_webhook_is_tried_again_after_its_back_off(patient, webhook_server):
    place = patient.place
    place.webhook_url = f"http://127.0.0.1:{webhook_server.server_port}/"
    place.webhook_secret = "k"
    place.save(update_fields=["webhook_url", "webhook_secret"])
    event = raise_alert(patient).events.get()
    webhook_server.status = 503
    assert alert_event_webhook(event_id=event.id) is False
    record = AlertNotification.objects.get(event=event, channel="webhook")
    assert (record.state, record.attempts, record.last_error) == (
        "pending",
        1,
        "webhook answered 503",
    )
    webhook_server.status = 200
    later = record.next_attempt_at + timedelta(seconds=1)
    assert alert_event_webhook(event_id=event.id, now=later) is True
    record.refresh_from_db()
    assert record.state == "sent" and record.sent_at is not None and record.attempts == 2


def test_no_webhook_configured_posts_nothing(patient):
    event = raise_alert(patient).events.get()
    assert alert_event_webhook(event_id=event.id) is False


# --- Dashboards -------------------------------------------------------------------------------


def test_transitions_reach_the_ward_group_once(patient, nurse, django_capture_on_commit_callbacks):
    with live_events(ward_group(patient.ward_id), patient_group(patient.id)) as live:
        with django_capture_on_commit_callbacks(execute=True):
            alert = raise_alert(patient)
        with django_capture_on_commit_callbacks(execute=True):
            services.alert_acknowledge(alert_id=alert.id, user=nurse)
        group, raised = live.next()
        assert group == ward_group(patient.ward_id)
        assert raised["type"] == "alert.event" and raised["action"] == "raised"
        assert raised["ward"] == patient.ward_id
        assert raised["alert"]["id"] == alert.id and raised["alert"]["state"] == "active"
        group, acked = live.next()
        assert group == ward_group(patient.ward_id)
        assert (acked["action"], acked["alert"]["state"]) == ("acknowledged", "acknowledged")
        # Patient subscriptions listen on the ward's group: no second copy on the patient's.
        with pytest.raises(TimeoutError):
            live.next(wait=0.5)


def test_nothing_is_delivered_when_the_transaction_rolls_back(
    patient, staff, smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                raise_alert(patient)
                raise RuntimeError("the ingest failed")
        except RuntimeError:
            pass
    assert callbacks == []
    assert smtp_server.messages == []


# --- Delivery sweep ---------------------------------------------------------------------------


def test_events_whose_planning_never_happened_are_planned_and_sent(
    patient, staff, smtp_server, celery_eager
):
    from notifications.tasks import alerts_delivery_sweep

    # The transition committed but nothing was planned (no on_commit here: the process died).
    alert = raise_alert(patient, at=datetime.now(UTC) - timedelta(seconds=90))
    event = alert.events.get()
    fresh = raise_alert(PatientFactory(ward=patient.ward), at=datetime.now(UTC))
    assert alert_events_unplanned() == [event.id]  # not the fresh one yet

    assert alerts_delivery_sweep.delay().get() == 2  # the doctor's and the nurse's e-mails
    assert len(smtp_server.to(staff["nurse"].email)) == 1
    assert alert_events_unplanned() == []
    assert alerts_delivery_sweep.delay().get() == 0
    assert fresh.events.get().id not in alert_events_unplanned()


def _cut_off_mid_send(event, staff, *, seconds_ago: float) -> None:
    """The rows a worker leaves when it dies mid-send: claimed ("sending"), never sent."""
    since = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    for person in (staff["doctor"], staff["nurse"]):
        AlertNotification.objects.create(
            event=event,
            channel="email",
            recipient=person.email,
            state="sending",
            sending_since=since,
            attempts=1,
        )


def test_a_delivery_stuck_sending_is_queued_again_and_taken_over(
    patient, staff, smtp_server, celery_eager, settings
):
    from notifications.tasks import alerts_delivery_sweep

    settings.NOTIFICATION_STUCK_SECONDS = 60
    event = raise_alert(patient).events.get()
    _cut_off_mid_send(event, staff, seconds_ago=61)
    assert len(deliveries_due()) == 2

    assert alerts_delivery_sweep.delay().get() == 2
    assert len(smtp_server.to(staff["doctor"].email)) == 1
    assert len(smtp_server.to(staff["nurse"].email)) == 1
    rows = AlertNotification.objects.filter(event=event)
    assert {(r.attempts, r.sending_since, r.state) for r in rows} == {(2, None, "sent")}
    assert deliveries_due() == []


def test_a_failed_attempt_whose_retry_message_was_lost_is_handed_out_by_the_sweep(
    patient, staff, smtp_server, celery_eager, settings
):
    """A failed attempt left the row pending with its next attempt due; the message of that
    attempt was lost (a Redis restarted empty): the sweep queues the row once it is overdue."""
    from notifications.tasks import alerts_delivery_sweep

    settings.NOTIFICATION_SWEEP_GRACE_SECONDS = 5
    event = raise_alert(patient).events.get()
    for person in (staff["doctor"], staff["nurse"]):
        AlertNotification.objects.create(
            event=event,
            channel="email",
            recipient=person.email,
            attempts=3,
            last_error="smtp: ConnectionRefusedError(111)",
            next_attempt_at=datetime.now(UTC) - timedelta(seconds=2),
        )
    assert alerts_delivery_sweep.delay().get() == 0  # its own task still has the time to run
    AlertNotification.objects.update(next_attempt_at=datetime.now(UTC) - timedelta(seconds=6))
    assert alerts_delivery_sweep.delay().get() == 2
    assert len(smtp_server.messages) == 2
    assert set(AlertNotification.objects.values_list("state", "attempts")) == {("sent", 4)}


def test_a_delivery_sending_right_now_is_left_to_its_worker(patient, staff, smtp_server, settings):
    settings.NOTIFICATION_STUCK_SECONDS = 60
    event = raise_alert(patient).events.get()
    _cut_off_mid_send(event, staff, seconds_ago=5)
    assert deliveries_due() == []
    # A second task for the same event (a duplicate, a redelivery) does not send beside it.
    assert alert_event_email(event_id=event.id) == 0
    assert smtp_server.messages == []


def test_the_broker_hands_a_killed_workers_task_out_again_after_any_retry_wait(settings):
    """acks_late: a task killed mid-run stays unacked until the visibility timeout. The timeout
    must outlast the longest countdown of any task (a countdown is held unacked by the worker),
    or a task waiting for its retry is run twice; and it must not hold a task for long: the
    old hour held an alarm e-mail for an hour."""
    from config.celery import app

    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    countdowns = [
        getattr(task, "retry_backoff_max", 0)
        for name, task in app.tasks.items()
        if not name.startswith("celery.") and getattr(task, "retry_backoff", False)
    ]
    countdowns.append(settings.NOTIFICATION_RETRY_MAX_SECONDS * 1.1)  # a delivery's next attempt
    assert timeout >= max(countdowns) + 30
    assert timeout <= 600
