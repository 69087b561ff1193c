"""Delivery of alert events to the outside world: one bookkeeping function, a transport per
channel (e-mail, webhook; an HL7 alert manager would be one more).

Every delivery to one recipient is an ``AlertNotification`` row: created before the first
attempt, marked sent after success, with attempts and the last error. A recipient already
marked sent is skipped, so a retried or duplicated task never delivers anything twice, and a
failure is recorded and re-raised for the task to retry the recipients still unsent.

An attempt first claims the row ("sending", committed at once), so two tasks for one event
never send to one recipient side by side. A claim older than ``NOTIFICATION_STUCK_SECONDS``
belongs to a worker that died mid-send: the next attempt takes it over, and the delivery
sweep queues such events again (``selectors.alert_events_undelivered``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import F, Q
from django.utils import timezone

from alerts.models import AlertEvent
from alerts.payload import alert_payload
from alerts.selectors import alert_event_get
from common import metrics
from notifications.alert_emails import alert_email_render, alert_event_recipients
from notifications.models import AlertNotification
from notifications.webhooks import webhook_post


class Transport:
    """One delivery channel: whom an event goes to and how one recipient gets it."""

    channel: str

    def recipients(self, event: AlertEvent) -> list[str]:
        raise NotImplementedError

    def send(self, event: AlertEvent, recipient: str) -> None:
        """Deliver or raise (the error is recorded and the task retries)."""
        raise NotImplementedError


class EmailTransport(Transport):
    channel = AlertNotification.Channel.EMAIL

    def recipients(self, event: AlertEvent) -> list[str]:
        return alert_event_recipients(event=event)

    def send(self, event: AlertEvent, recipient: str) -> None:
        subject, body = alert_email_render(alert=event.alert, event=event)
        EmailMessage(subject=subject, body=body, to=[recipient]).send()


class WebhookTransport(Transport):
    """The place's webhook, if it has one: every event, signed (see ``webhooks``)."""

    channel = AlertNotification.Channel.WEBHOOK

    def recipients(self, event: AlertEvent) -> list[str]:
        url = event.alert.patient.place.webhook_url
        return [url] if url else []

    def send(self, event: AlertEvent, recipient: str) -> None:
        webhook_post(
            url=recipient,
            secret=event.alert.patient.place.webhook_secret,
            event_id=event.id,
            payload=webhook_payload(event),
        )


def webhook_payload(event: AlertEvent) -> dict[str, Any]:
    return {
        "event": {
            "id": event.id,
            "action": event.action,
            "at": event.at.isoformat(),
            "by": event.by_id,
            "note": event.note,
        },
        "alert": alert_payload(event.alert),
    }


def event_deliver(*, event: AlertEvent, transport: Transport) -> int:
    """Deliver one event through one transport to each recipient once; returns how many
    deliveries were made now."""
    sent = 0
    for recipient in transport.recipients(event):
        record, _ = AlertNotification.objects.get_or_create(
            event=event, channel=transport.channel, recipient=recipient
        )
        if record.sent_at is not None or not notification_claim(record=record):
            continue
        try:
            transport.send(event, recipient)
        except Exception as exc:
            metrics.ALERT_DELIVERIES.labels(channel=transport.channel, outcome="failed").inc()
            AlertNotification.objects.filter(pk=record.pk).update(
                sending_since=None, last_error=str(exc)[:500]
            )
            raise
        AlertNotification.objects.filter(pk=record.pk).update(
            sending_since=None, sent_at=timezone.now(), last_error=""
        )
        metrics.ALERT_DELIVERIES.labels(channel=transport.channel, outcome="sent").inc()
        sent += 1
    return sent


def notification_claim(*, record: AlertNotification) -> bool:
    """Mark the row "sending" for this attempt, unless it was sent meanwhile or another
    attempt still holds a fresh claim; True when this attempt may send."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATION_STUCK_SECONDS)
    claimed = (
        AlertNotification.objects.filter(pk=record.pk, sent_at__isnull=True)
        .filter(Q(sending_since__isnull=True) | Q(sending_since__lt=stale))
        .update(sending_since=now, attempts=F("attempts") + 1)
    )
    return claimed == 1


def alert_event_email(*, event_id: int) -> int:
    """E-mail one alert event to its recipients; returns how many were sent now."""
    event = alert_event_get(event_id=event_id)
    return 0 if event is None else event_deliver(event=event, transport=EmailTransport())


def alert_event_webhook(*, event_id: int) -> bool:
    """POST one alert event to its place's webhook once; True when it was sent now."""
    event = alert_event_get(event_id=event_id)
    return event is not None and bool(event_deliver(event=event, transport=WebhookTransport()))
