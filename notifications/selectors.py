"""Reads of deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from alerts.selectors import alert_events_between
from alerts.vocabulary import Action
from notifications.models import AlertNotification


def alert_events_undelivered(
    *, now: datetime | None = None, older_than: int = 60, window: int = 900
) -> list[int]:
    """Recent events whose delivery never started (no delivery recorded at all), e.g. because
    the broker was unreachable when the transition committed. Events that notify nobody by
    e-mail and have no webhook are left out."""
    now = now or timezone.now()
    emailed = (Action.RAISED, Action.UPDATED, Action.ESCALATED)
    return list(
        alert_events_between(
            start=now - timedelta(seconds=window), end=now - timedelta(seconds=older_than)
        )
        .filter(Q(action__in=emailed) | ~Q(alert__patient__place__webhook_url=""))
        .exclude(Exists(AlertNotification.objects.filter(event=OuterRef("pk"))))
        .values_list("id", flat=True)
    )
