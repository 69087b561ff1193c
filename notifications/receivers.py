"""What delivery listens to: every committed alert transition is queued for delivery."""

from __future__ import annotations

import logging
from typing import Any

from common.logs import log_ids
from notifications.tasks import alert_event_notify

logger = logging.getLogger(__name__)


def alert_changed_deliver(*, alert: Any, event: Any, **_: Any) -> None:
    """Queue the delivery of one alert event (the signal is sent after commit)."""
    try:
        alert_event_notify.delay(event.id)
    except Exception:  # broker down: the event stays recorded and the sweep queues it again
        logger.exception(
            "could not queue notifications for alert event %s",
            event.id,
            extra=log_ids(alert=alert, alert_event_id=event.id),
        )
