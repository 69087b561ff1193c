"""Reads of deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from alerts.selectors import alert_events_between
from alerts.vocabulary import Action
from notifications.models import AlertNotification


def alert_events_undelivered(
    *,
    now: datetime | None = None,
    older_than: int = 60,
    window: int = 900,
    stuck_after: float | None = None,
) -> list[int]:
    """Recent events whose delivery must be queued again:

    - never started (no delivery recorded at all), e.g. because the broker was unreachable
      when the transition committed; events that notify nobody by e-mail and have no webhook
      are left out;
    - or stuck "sending" for longer than ``stuck_after`` seconds (default
      ``NOTIFICATION_STUCK_SECONDS``): the worker died mid-send.
    """
    now = now or timezone.now()
    stuck_after = settings.NOTIFICATION_STUCK_SECONDS if stuck_after is None else stuck_after
    emailed = (Action.RAISED, Action.UPDATED, Action.ESCALATED)
    recorded = AlertNotification.objects.filter(event=OuterRef("pk"))
    stuck = recorded.filter(
        sent_at__isnull=True, sending_since__lt=now - timedelta(seconds=stuck_after)
    )
    never_started = (
        Q(at__lte=now - timedelta(seconds=older_than))
        & (Q(action__in=emailed) | ~Q(alert__patient__place__webhook_url=""))
        & ~Exists(recorded)
    )
    return list(
        alert_events_between(start=now - timedelta(seconds=window), end=now)
        .filter(never_started | Exists(stuck))
        .values_list("id", flat=True)
    )
