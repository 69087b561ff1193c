"""What outbound HL7 listens to: every committed alert transition is queued for the place's
alert manager (the task does nothing where the place has none)."""

from __future__ import annotations

import logging
from typing import Any

from hl7v2.tasks import alert_event_report_task

logger = logging.getLogger(__name__)


def alert_changed_report(*, event: Any, **_: Any) -> None:
    try:
        alert_event_report_task.delay(event.id)
    except Exception:  # broker down: the event stays recorded
        logger.exception("could not queue the HL7 alert report of event %s", event.id)
