"""Reads of the deliveries outbox."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from alerts.selectors import alert_events_between
from notifications.models import AlertNotification

State = AlertNotification.State


def alert_events_unplanned(
    *, now: datetime | None = None, older_than: float = 30, window: float = 900
) -> list[int]:
    """Recent events (of the last ``window`` seconds, older than ``older_than``) with no
    delivery recorded at all: their planning after commit never happened (the process died
    in between) or found nobody. Planning them again is idempotent and cheap."""
    now = now or timezone.now()
    recorded = AlertNotification.objects.filter(event=OuterRef("pk"))
    return list(
        alert_events_between(
            start=now - timedelta(seconds=window), end=now - timedelta(seconds=older_than)
        )
        .filter(~Exists(recorded))
        .values_list("id", flat=True)
    )


def deliveries_due(
    *, now: datetime | None = None, grace: float = 0.0, limit: int = 500
) -> list[tuple[int, int, datetime]]:
    """Deliveries to hand out, as (id, attempts, next_attempt_at): pending and due for longer
    than ``grace`` seconds (their own task would have taken them by then), or "sending" for
    longer than ``NOTIFICATION_STUCK_SECONDS`` (the worker died mid-send); oldest first."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATION_STUCK_SECONDS)
    due = Q(state=State.PENDING, next_attempt_at__lte=now - timedelta(seconds=grace)) | Q(
        state=State.SENDING, sending_since__lt=stale
    )
    return list(
        AlertNotification.objects.filter(due)
        .order_by("next_attempt_at")
        .values_list("id", "attempts", "next_attempt_at")[:limit]
    )


def deliveries_failed(*, since: datetime) -> QuerySet[AlertNotification]:
    """Deliveries that failed for good since ``since``, newest first."""
    return AlertNotification.objects.filter(state=State.FAILED, failed_at__gte=since).order_by(
        "-failed_at"
    )


def deliveries_overdue(*, now: datetime | None = None, late: float) -> int:
    """How many pending deliveries have been due for more than ``late`` seconds (nobody is
    working the outbox: no worker, no beat, or no broker)."""
    now = now or timezone.now()
    return AlertNotification.objects.filter(
        state=State.PENDING, next_attempt_at__lt=now - timedelta(seconds=late)
    ).count()
