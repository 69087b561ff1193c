"""Celery tasks. Tasks take ids, load, call a service; they are idempotent where possible,
retry with backoff on mail-server and network errors, and are queued after commit."""

from __future__ import annotations

import smtplib

from celery import shared_task

# Retry policy for anything that talks to the mail server: SMTP refusals and network errors.
MAIL_RETRY = {
    "autoretry_for": (smtplib.SMTPException, OSError),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
}


# === Account e-mails (credentials, password reset) ===========================================


@shared_task(name="notifications.send_credentials_email", **MAIL_RETRY)
def send_credentials_email(user_id: int) -> bool:
    """E-mail a new account its login and a one-time password (made by the service, so the
    password never appears in task arguments or logs)."""
    from accounts.services import user_credentials_send

    return user_credentials_send(user_id=user_id)


@shared_task(name="notifications.send_password_reset_email", **MAIL_RETRY)
def send_password_reset_email(user_id: int) -> bool:
    """E-mail a password reset code (made by the service, replacing any earlier code)."""
    from accounts.services import user_reset_code_send

    return user_reset_code_send(user_id=user_id)


# === End of account e-mails ==================================================================


# === Alerts: fan-out of alert events, device-offline scan, escalation scan ===================

from notifications.webhooks import WebhookError  # noqa: E402

ALERT_RETRY = {
    "autoretry_for": (smtplib.SMTPException, OSError, WebhookError),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 12,
    "acks_late": True,
}


@shared_task(name="notifications.tasks.alert_event_notify", **ALERT_RETRY)
def alert_event_notify(event_id: int) -> dict[str, int]:
    """Deliver one alert event: e-mail to its recipients, then the place's webhook. Each
    delivery is recorded, so a retry sends only what has not been sent."""
    from notifications.alert_emails import alert_event_email
    from notifications.webhooks import alert_event_webhook

    emails = alert_event_email(event_id=event_id)
    webhook = alert_event_webhook(event_id=event_id)
    return {"emails": emails, "webhook": int(webhook)}


@shared_task(name="notifications.tasks.alerts_offline_scan", acks_late=True)
def alerts_offline_scan() -> int:
    """Beat: raise device_offline for silent devices, resolve it for those back."""
    from clinical.alarms import alarms_offline_scan

    return len(alarms_offline_scan())


@shared_task(name="notifications.tasks.alerts_escalation_scan", acks_late=True)
def alerts_escalation_scan() -> int:
    """Beat: escalate high-priority alerts unacknowledged for ALERT_ESCALATION_SECONDS."""
    from clinical.alerts import alerts_escalate_due

    return len(alerts_escalate_due())


@shared_task(name="notifications.tasks.alerts_delivery_sweep", acks_late=True)
def alerts_delivery_sweep() -> int:
    """Beat: queue again the fan-out of recent alert events that never started (the broker
    was down when they committed); at most once a minute per event."""
    from clinical.alarms import key_prefix, redis_client
    from clinical.alerts import alert_events_undelivered

    client = redis_client()
    queued = 0
    for event_id in alert_events_undelivered():
        if client.set(f"{key_prefix()}requeue:{event_id}", 1, nx=True, ex=60):
            alert_event_notify.delay(event_id)
            queued += 1
    return queued


# === End of alerts ===========================================================================
