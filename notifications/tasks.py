"""Celery tasks of delivery: one attempt of one outbox row, and the sweep that hands out
whatever is due (``notifications.delivery``).

Tasks take ids and are idempotent: an attempt first claims its row, so a duplicated or
redelivered message sends nothing twice. Retries are not Celery retries: a failed attempt
records when the row is due again and queues its next attempt for then; should that message
be lost (a worker killed, a Redis restarted empty), the sweep hands the row out again. The
old task names are kept, so tasks queued before an upgrade still run.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from alerts.selectors import alert_event_get
from notifications.delivery import deliveries_plan, delivery_attempt
from notifications.selectors import alert_events_unplanned, deliveries_due

logger = logging.getLogger(__name__)


@shared_task(name="notifications.tasks.notification_deliver", acks_late=True)
def notification_deliver(notification_id: int) -> str:
    """One attempt of one delivery; after a transient failure its next attempt is queued for
    when it is due (the sweep queues it should this message be lost)."""
    attempt = delivery_attempt(notification_id=notification_id)
    if attempt.outcome == "retry" and attempt.retry_at is not None:
        countdown = max((attempt.retry_at - timezone.now()).total_seconds(), 0.0)
        try:
            notification_deliver.apply_async((notification_id,), countdown=countdown)
            logger.info("delivery %s: next attempt queued, in %.1f s", notification_id, countdown)
        except Exception:  # the broker is away: the sweep hands the row out once it is back
            logger.warning("could not queue the next attempt of delivery %s", notification_id)
    return attempt.outcome


def deliveries_queue(ids: list[int]) -> int:
    """Queue one attempt per delivery id; how many were queued (the broker may be away)."""
    queued = 0
    for notification_id in ids:
        try:
            notification_deliver.delay(notification_id)
        except Exception:  # broker away: the rows stay due, the sweep queues them later
            logger.warning("could not queue delivery %s; the sweep will", notification_id)
            break
        queued += 1
    return queued


@shared_task(name="notifications.tasks.alert_event_notify", acks_late=True)
def alert_event_notify(event_id: int) -> int:
    """Plan the deliveries of one alert event and queue each (kept for messages queued by an
    earlier release); how many were queued."""
    event = alert_event_get(event_id=event_id)
    return 0 if event is None else deliveries_queue(deliveries_plan(event=event))


@shared_task(name="notifications.tasks.alerts_delivery_sweep", acks_late=True)
def alerts_delivery_sweep() -> int:
    """Beat: plan recent events whose planning never happened, and queue every delivery that
    is due but was not taken (its message lost, or never sent while the broker was away) or is
    stuck "sending" (its worker died); each at most once per ``NOTIFICATION_STUCK_SECONDS``."""
    planned: list[int] = []
    for event_id in alert_events_unplanned():
        event = alert_event_get(event_id=event_id)
        if event is not None:
            planned += deliveries_plan(event=event)
    # A row is handed out once per state (its attempts, when due) and stuck interval.
    fresh = [
        notification_id
        for notification_id, attempts, due_at in deliveries_due(
            grace=settings.NOTIFICATION_SWEEP_GRACE_SECONDS
        )
        if notification_id not in planned
        and cache.add(
            f"notifications:requeue:{notification_id}:{attempts}:{due_at.timestamp()}",
            1,
            timeout=settings.NOTIFICATION_STUCK_SECONDS,
        )
    ]
    return deliveries_queue(planned + fresh)
