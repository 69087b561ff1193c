"""What the dashboards hear from alerts: alert transitions and CTG classifications, through
monitoring's one publishing door (never raising: what is stored is shown by the next snapshot).
"""

from __future__ import annotations

import logging

from alerts.models import Alert, CtgClassification
from alerts.payload import alert_payload, ctg_classification_payload
from common.logs import log_ids
from monitoring.live.events import scope_group
from monitoring.live.publish import live_publish

logger = logging.getLogger(__name__)


def alert_publish(*, alert: Alert, action: str) -> None:
    """Send the alert to the dashboards watching its patient (never raises): one message on
    the group that carries the patient's live events (see ``scope_group``)."""
    ward_id = alert.patient.ward_id
    group = scope_group(ward_id=ward_id, patient_id=alert.patient_id)
    event = {
        "type": "alert.event",
        "ward": ward_id,
        "action": action,
        "alert": alert_payload(alert),
    }
    try:
        live_publish([(group, event)])
    except Exception:  # the alert is stored; dashboards resynchronise from the snapshot
        logger.exception(
            "could not publish alert %s to dashboards", alert.id, extra=log_ids(alert=alert)
        )


def ctg_classification_publish(*, row: CtgClassification, ward_id: int | None) -> None:
    """Send the classification to the dashboards watching its patient (never raises): one
    message on the group that carries the patient's live events (see ``scope_group``)."""
    event = {
        "type": "ctg.classification",
        "ward": ward_id,
        "patient": row.patient_id,
        "ctg": ctg_classification_payload(row),
    }
    try:
        live_publish([(scope_group(ward_id=ward_id, patient_id=row.patient_id), event)])
    except Exception:  # the row is stored; dashboards resynchronise from the snapshot
        logger.exception("could not publish the CTG classification of patient %s", row.patient_id)
