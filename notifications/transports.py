"""The delivery channels of alert events, one transport class each, in one registry that the
delivery task and the sweep both loop over (healthchecks' ``TRANSPORTS`` and
``TransportError(permanent=...)`` are the model).

A transport says whom an event goes to (``recipients``) and delivers it to one of them
(``send``). A failure is a :class:`TransportError`: transient (tried again with back-off) or
``permanent`` (the recipient will never take it: given up at once). Any other exception is
counted as a transient failure, so a bug or an outage of an unexpected kind still ends in the
technical alarm once the attempts are exhausted instead of failing silently.

Apps above ``notifications`` add their own (``hl7v2`` registers the HL7 alert manager) with
:func:`transport_register` in their ``AppConfig.ready()``.
"""

from __future__ import annotations

import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage

from alerts.models import AlertEvent
from alerts.payload import alert_payload
from notifications.alert_emails import alert_email_render, alert_event_recipients
from notifications.webhooks import WebhookError, webhook_post


class TransportError(Exception):
    """A delivery attempt failed; ``permanent`` when trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class Transport:
    """One delivery channel: whom an event goes to and how one recipient gets it."""

    channel: str = ""

    def recipients(self, event: AlertEvent) -> list[str]:
        raise NotImplementedError

    def send(self, event: AlertEvent, recipient: str, *, delivery_id: int) -> None:
        """Deliver, or raise (:class:`TransportError` or any exception: transient)."""
        raise NotImplementedError


class EmailTransport(Transport):
    channel = "email"

    def recipients(self, event: AlertEvent) -> list[str]:
        return alert_event_recipients(event=event)

    def send(self, event: AlertEvent, recipient: str, *, delivery_id: int) -> None:
        subject, body = alert_email_render(alert=event.alert, event=event)
        domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "localhost"
        # The same Message-ID on every attempt of this delivery: a message that reached the
        # server before its sender died is recognised as a duplicate by the receiving side.
        headers = {"Message-ID": f"<alert-delivery-{delivery_id}@{domain}>"}
        message = EmailMessage(subject=subject, body=body, to=[recipient], headers=headers)
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise TransportError(
                f"recipient refused: {codes}", permanent=all(500 <= c < 600 for c in codes)
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"smtp: {exc!r}") from exc


class WebhookTransport(Transport):
    """The place's webhook, if it has one: every event, signed (see ``webhooks``)."""

    channel = "webhook"

    def recipients(self, event: AlertEvent) -> list[str]:
        url = event.alert.patient.place.webhook_url
        return [url] if url else []

    def send(self, event: AlertEvent, recipient: str, *, delivery_id: int) -> None:
        try:
            webhook_post(
                url=recipient,
                secret=event.alert.patient.place.webhook_secret,
                event_id=event.id,
                payload=webhook_payload(event),
            )
        except WebhookError as exc:
            raise TransportError(str(exc)) from exc


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


TRANSPORTS: dict[str, Transport] = {}


def transport_register(transport: Transport) -> None:
    """Add (or replace) the transport of ``transport.channel``."""
    TRANSPORTS[transport.channel] = transport


transport_register(EmailTransport())
transport_register(WebhookTransport())
