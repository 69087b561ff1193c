"""Celery tasks of delivery: one alert event out to e-mail and the webhook, and the sweep that
queues again events whose delivery never started.

Tasks take ids and are idempotent (see ``delivery``); they retry with backoff. The task names
are kept from earlier releases, so tasks queued before an upgrade still run.
"""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from common.tasks import RetryPolicy
from notifications.delivery import alert_event_email, alert_event_webhook
from notifications.selectors import alert_events_undelivered
from notifications.webhooks import WebhookError

ALERT_RETRY: RetryPolicy = {
    "autoretry_for": (smtplib.SMTPException, OSError, WebhookError),
    "retry_backoff": 2,
    # An alarm e-mail is tried again at least every minute while SMTP fails (about 15 min).
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 20,
    "acks_late": True,
}


@shared_task(name="notifications.tasks.alert_event_notify", **ALERT_RETRY)
def alert_event_notify(event_id: int) -> dict[str, int]:
    """Deliver one alert event: e-mail to its recipients, then the place's webhook. Each
    delivery is recorded, so a retry sends only what has not been sent."""
    emails = alert_event_email(event_id=event_id)
    webhook = alert_event_webhook(event_id=event_id)
    return {"emails": emails, "webhook": int(webhook)}


@shared_task(name="notifications.tasks.alerts_delivery_sweep", acks_late=True)
def alerts_delivery_sweep() -> int:
    """Beat: queue again the delivery of recent alert events that never started (the broker
    was down when they committed) or are stuck "sending" (the worker died mid-send); at most
    once per stuck interval per event."""
    queued = 0
    for event_id in alert_events_undelivered():
        if cache.add(
            f"notifications:requeue:{event_id}", 1, timeout=settings.NOTIFICATION_STUCK_SECONDS
        ):
            alert_event_notify.delay(event_id)
            queued += 1
    return queued
