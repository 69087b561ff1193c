"""Delivery of alert events to the outside world: one outbox in the database, one bookkeeping
function, a transport per channel (``notifications.transports``).

- :func:`deliveries_plan` writes one ``AlertNotification`` row per transport and recipient of
  an event (idempotent), right after the transition committed, or from the sweep for an event
  whose planning never happened.
- :func:`delivery_attempt` makes one attempt of one row: it claims the row (pending and due,
  or "sending" for longer than ``NOTIFICATION_STUCK_SECONDS``: its worker died) with one
  conditional UPDATE, sends through the row's transport, and records the outcome: sent; due
  again after a back-off; or failed for good (the attempts exhausted, or a permanent
  refusal), which raises a technical alarm on the patient's ward.

Every row is its own task, so the channels and the recipients are independent: a webhook does
not wait behind an SMTP server that is down. Nothing here depends on the broker keeping a
message: the sweep (``tasks.alerts_delivery_sweep``) hands out again whatever is due.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from alerts.models import AlertEvent
from alerts.selectors import alert_event_get
from alerts.services import alert_raise
from alerts.vocabulary import KIND_DELIVERY_FAILED, Priority
from common import metrics
from common.logs import log_ids
from notifications.models import AlertNotification
from notifications.transports import TRANSPORTS, Transport, TransportError

logger = logging.getLogger(__name__)

State = AlertNotification.State
CHANNEL_NAMES = {"email": "e-mail", "webhook": "webhook", "hl7": "HL7 alert manager"}


@dataclass(frozen=True)
class Attempt:
    """What one call of :func:`delivery_attempt` did: ``skipped`` (not due, or another
    attempt holds it), ``sent``, ``retry`` (due again at ``retry_at``) or ``failed``."""

    outcome: str
    retry_at: datetime | None = None


def deliveries_plan(*, event: AlertEvent, transport: Transport | None = None) -> list[int]:
    """The outbox rows of ``event`` (every registered transport, or only ``transport``),
    created where missing; the ids of those not yet sent or failed."""
    transports = [transport] if transport is not None else list(TRANSPORTS.values())
    ids: list[int] = []
    for one in transports:
        for recipient in one.recipients(event):
            row, _ = AlertNotification.objects.get_or_create(
                event=event, channel=one.channel, recipient=recipient[:500]
            )
            if row.state not in (State.SENT, State.FAILED):
                ids.append(row.pk)
    return ids


def delivery_claim(*, notification_id: int, now: datetime | None = None) -> bool:
    """Move the row to "sending" for this attempt: only a pending row that is due, or one
    stuck "sending" (its worker died) is taken; True when this attempt may send."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATION_STUCK_SECONDS)
    due = Q(state=State.PENDING, next_attempt_at__lte=now) | Q(
        state=State.SENDING, sending_since__lt=stale
    )
    claimed = AlertNotification.objects.filter(due, pk=notification_id).update(
        state=State.SENDING, sending_since=now, attempts=F("attempts") + 1
    )
    return claimed == 1


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: doubling from
    ``NOTIFICATION_RETRY_FIRST_SECONDS`` up to ``NOTIFICATION_RETRY_MAX_SECONDS``, with up to
    10 % jitter so that many deliveries failing together do not retry together."""
    first = settings.NOTIFICATION_RETRY_FIRST_SECONDS
    delay = min(settings.NOTIFICATION_RETRY_MAX_SECONDS, first * 2 ** max(attempts - 1, 0))
    return float(delay * (1 + random.random() / 10))


def delivery_attempt(*, notification_id: int, now: datetime | None = None) -> Attempt:
    """One attempt of one delivery (see the module docstring); never raises for a failed
    send: the failure is recorded on the row."""
    if not delivery_claim(notification_id=notification_id, now=now):
        return Attempt("skipped")
    row = AlertNotification.objects.get(pk=notification_id)
    event = alert_event_get(event_id=row.event_id)
    transport = TRANSPORTS.get(row.channel)
    try:
        if event is None or transport is None:
            raise TransportError(f"no transport for {row.channel!r}", permanent=True)
        transport.send(event, row.recipient, delivery_id=row.pk)
    except Exception as exc:
        return _failed(row, exc, now=timezone.now())
    AlertNotification.objects.filter(pk=row.pk).update(
        state=State.SENT, sending_since=None, sent_at=timezone.now(), last_error=""
    )
    metrics.ALERT_DELIVERIES.labels(channel=row.channel, outcome="sent").inc()
    return Attempt("sent")


def _failed(row: AlertNotification, exc: Exception, *, now: datetime) -> Attempt:
    if isinstance(exc, TransportError):
        error, permanent = exc.message, exc.permanent
    else:  # unexpected: logged with its traceback, and tried again like a transient failure
        logger.exception("delivery %s (%s) failed unexpectedly", row.pk, row.channel)
        error, permanent = f"{type(exc).__name__}: {exc}", False
    metrics.ALERT_DELIVERIES.labels(channel=row.channel, outcome="failed").inc()
    if permanent or row.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        AlertNotification.objects.filter(pk=row.pk).update(
            state=State.FAILED, sending_since=None, failed_at=now, last_error=error[:500]
        )
        row.last_error = error[:500]
        delivery_gave_up(row=row)
        return Attempt("failed")
    retry_at = now + timedelta(seconds=retry_delay(row.attempts))
    AlertNotification.objects.filter(pk=row.pk).update(
        state=State.PENDING, sending_since=None, next_attempt_at=retry_at, last_error=error[:500]
    )
    logger.warning(
        "delivery %s (%s to %s) failed, attempt %s; next at %s: %s",
        row.pk,
        row.channel,
        row.recipient,
        row.attempts,
        retry_at.isoformat(),
        error,
    )
    return Attempt("retry", retry_at)


def delivery_gave_up(*, row: AlertNotification) -> None:
    """A delivery failed for good: logged as an error, counted, and shown on the patient's
    ward as a technical alarm ("alarm page to X could not be delivered"). A failed delivery
    of that technical alarm itself raises nothing more (no chain of alarms about alarms)."""
    event = alert_event_get(event_id=row.event_id)
    metrics.ALERT_DELIVERIES.labels(channel=row.channel, outcome="gave_up").inc()
    logger.error(
        "delivery %s (%s to %s) failed for good after %s attempts: %s",
        row.pk,
        row.channel,
        row.recipient,
        row.attempts,
        row.last_error,
        extra=log_ids(alert=event.alert) if event is not None else {},
    )
    if event is None or event.alert.kind == KIND_DELIVERY_FAILED:
        return
    what = CHANNEL_NAMES.get(row.channel, row.channel)
    message = (
        f"Alarm page to {row.recipient} ({what}) could not be delivered: "
        f"{event.alert.kind.replace('_', ' ')} alarm {event.action}. {row.last_error}"
    )
    alert_raise(
        patient_id=event.alert.patient_id,
        kind=KIND_DELIVERY_FAILED,
        priority=Priority.MEDIUM,
        message=message,
    )


def event_deliver(*, event: AlertEvent, transport: Transport, now: datetime | None = None) -> int:
    """Plan and attempt, here and now, the deliveries of one event through one transport
    that are due; how many were sent now."""
    ids = deliveries_plan(event=event, transport=transport)
    return sum(delivery_attempt(notification_id=i, now=now).outcome == "sent" for i in ids)


def alert_event_email(*, event_id: int, now: datetime | None = None) -> int:
    """E-mail one alert event to its recipients (those due); how many were sent now."""
    event = alert_event_get(event_id=event_id)
    return (
        0 if event is None else event_deliver(event=event, transport=TRANSPORTS["email"], now=now)
    )


def alert_event_webhook(*, event_id: int, now: datetime | None = None) -> bool:
    """POST one alert event to its place's webhook once; True when it was sent now."""
    event = alert_event_get(event_id=event_id)
    return event is not None and bool(
        event_deliver(event=event, transport=TRANSPORTS["webhook"], now=now)
    )
