"""What delivery listens to: every committed alert transition is planned in the outbox and
each of its deliveries queued."""

from __future__ import annotations

import logging
from typing import Any

from common.logs import log_ids
from notifications.delivery import deliveries_plan
from notifications.tasks import deliveries_queue

logger = logging.getLogger(__name__)


def alert_changed_deliver(*, alert: Any, event: Any, **_: Any) -> None:
    """Plan the deliveries of one alert event and queue each (the signal is sent after
    commit). The rows are the record: whatever is not queued now, the sweep queues."""
    try:
        deliveries_queue(deliveries_plan(event=event))
    except Exception:  # the event stays recorded; the sweep plans it again
        logger.exception(
            "could not plan the deliveries of alert event %s",
            event.id,
            extra=log_ids(alert=alert, alert_event_id=event.id),
        )
