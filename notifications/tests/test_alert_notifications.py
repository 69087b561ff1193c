"""Alert fan-out: e-mail through a real SMTP server, signed webhooks to a real HTTP server,
dashboard events through the real Redis channel layer; idempotent and retried."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.models import Role
from alerts import services
from alerts.tasks import alerts_escalation_scan
from monitoring.live.groups import patient_group, ward_group
from notifications.delivery import alert_event_email, alert_event_webhook
from notifications.models import AlertNotification
from notifications.selectors import alert_events_undelivered
from notifications.tasks import alert_event_notify
from notifications.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookError,
    webhook_verify,
)
from testing.factories import PatientFactory, UserFactory
from testing.live_events import live_events

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
    assert alert_event_notify.delay(event.id).get() == {"emails": 0, "webhook": 0}
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
    with pytest.raises(OSError):
        alert_event_email(event_id=event.id)
    failed = AlertNotification.objects.get(event=event, recipient=staff["doctor"].email)
    assert failed.sent_at is None and failed.attempts == 1 and failed.last_error
    settings.EMAIL_PORT = smtp_server.port
    assert alert_event_email(event_id=event.id) == 2
    assert alert_event_email(event_id=event.id) == 0
    assert len(smtp_server.to(staff["doctor"].email)) == 1


def test_the_fan_out_task_retries_with_backoff_and_acks_late():
    assert alert_event_notify.acks_late is True
    # Set by shared_task from ALERT_RETRY; celery-types' Task does not declare these options.
    assert alert_event_notify.retry_backoff  # type: ignore[attr-defined]  # see above
    autoretry_for = alert_event_notify.autoretry_for  # type: ignore[attr-defined]  # see above
    assert OSError in autoretry_for
    assert WebhookError in autoretry_for


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


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        assert isinstance(server, _WebhookServer)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.requests.append((dict(self.headers), body))
        self.send_response(server.status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class _WebhookServer(ThreadingHTTPServer):
    """Keeps the requests it is sent; answers each with ``status``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204


@pytest.fixture
def webhook_server() -> Iterator[_WebhookServer]:
    server = _WebhookServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


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


def test_a_refused_webhook_raises_for_retry_and_succeeds_later(patient, webhook_server):
    place = patient.place
    place.webhook_url = f"http://127.0.0.1:{webhook_server.server_port}/"
    place.webhook_secret = "k"
    place.save(update_fields=["webhook_url", "webhook_secret"])
    event = raise_alert(patient).events.get()
    webhook_server.status = 503
    with pytest.raises(WebhookError):
        alert_event_webhook(event_id=event.id)
    webhook_server.status = 200
    assert alert_event_webhook(event_id=event.id) is True
    record = AlertNotification.objects.get(event=event, channel="webhook")
    assert record.sent_at is not None and record.attempts == 2


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


def test_events_whose_fan_out_never_started_are_queued_again(
    patient, staff, smtp_server, celery_eager, settings
):
    from django.core.cache import cache

    from notifications.tasks import alerts_delivery_sweep

    # The transition committed but its task never reached the broker (no on_commit here).
    alert = raise_alert(patient, at=datetime.now(UTC) - timedelta(seconds=90))
    event = alert.events.get()
    fresh = raise_alert(PatientFactory(ward=patient.ward), at=datetime.now(UTC))
    cache.delete(f"notifications:requeue:{event.id}")
    assert alert_events_undelivered() == [event.id]  # not the fresh one yet

    assert alerts_delivery_sweep.delay().get() == 1
    assert len(smtp_server.to(staff["nurse"].email)) == 1
    assert alert_events_undelivered() == []
    assert alerts_delivery_sweep.delay().get() == 0
    assert fresh.events.get().id not in alert_events_undelivered()


def _cut_off_mid_send(event, staff, *, seconds_ago: float) -> None:
    """The rows a worker leaves when it dies mid-send: claimed ("sending"), never sent."""
    since = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    for person in (staff["doctor"], staff["nurse"]):
        AlertNotification.objects.create(
            event=event, channel="email", recipient=person.email, sending_since=since, attempts=1
        )


def test_a_delivery_stuck_sending_is_queued_again_and_taken_over(
    patient, staff, smtp_server, celery_eager, settings
):
    from django.core.cache import cache

    from notifications.tasks import alerts_delivery_sweep

    settings.NOTIFICATION_STUCK_SECONDS = 60
    event = raise_alert(patient).events.get()
    cache.delete(f"notifications:requeue:{event.id}")
    _cut_off_mid_send(event, staff, seconds_ago=61)
    assert alert_events_undelivered() == [event.id]

    assert alerts_delivery_sweep.delay().get() == 1
    assert len(smtp_server.to(staff["doctor"].email)) == 1
    assert len(smtp_server.to(staff["nurse"].email)) == 1
    rows = AlertNotification.objects.filter(event=event)
    assert {(r.attempts, r.sending_since, r.sent_at is not None) for r in rows} == {(2, None, True)}
    assert alert_events_undelivered() == []


def test_a_delivery_sending_right_now_is_left_to_its_worker(patient, staff, smtp_server, settings):
    settings.NOTIFICATION_STUCK_SECONDS = 60
    event = raise_alert(patient).events.get()
    _cut_off_mid_send(event, staff, seconds_ago=5)
    assert alert_events_undelivered() == []
    # A second task for the same event (a duplicate, a redelivery) does not send beside it.
    assert alert_event_email(event_id=event.id) == 0
    assert smtp_server.messages == []


def test_the_broker_hands_a_killed_workers_task_out_again_after_any_retry_wait():
    """acks_late: a task killed mid-run stays unacked until the visibility timeout. The timeout
    must outlast the longest retry countdown of any task (a countdown is held unacked by the
    worker), or a task waiting for its retry is run twice; and it must not hold a task for
    long: the old hour held an alarm e-mail for an hour."""
    from django.conf import settings

    from config.celery import app

    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    countdowns = [
        getattr(task, "retry_backoff_max", 0)
        for name, task in app.tasks.items()
        if not name.startswith("celery.") and getattr(task, "retry_backoff", False)
    ]
    assert countdowns and timeout >= max(countdowns) + 30
    assert timeout <= 600
    assert alert_event_notify.retry_backoff_max <= 60  # type: ignore[attr-defined]
