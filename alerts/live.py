"""How alerts plug into lower apps: evaluation of stored readings, open alerts in dashboard
snapshots, and ``alert.ack`` over the dashboard WebSocket. Connected in ``AlertsConfig.ready``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.db import connection, transaction

from accounts.models import User
from accounts.selectors import user_place_ids
from alerts import services
from alerts.evaluate import alarms_evaluate
from alerts.payload import alert_payload
from alerts.selectors import alert_place_id, alerts_open_of_patients
from common.errors import NotFound, ValidationFailed
from monitoring.realtime.registry import dashboard_frame_register, snapshot_extra_register
from monitoring.signals import readings_stored

logger = logging.getLogger(__name__)


def snapshot_alerts(*, patient_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The open alerts of each snapshot patient (one query)."""
    found = alerts_open_of_patients(patient_ids=patient_ids)
    return {patient_id: [alert_payload(a) for a in alerts] for patient_id, alerts in found.items()}


def alert_ack_frame(*, user: User, frame: dict[str, Any]) -> dict[str, Any]:
    """``{"type": "alert.ack", "alert": id}`` from a dashboard."""
    alert_id = frame.get("alert")
    if not isinstance(alert_id, int) or isinstance(alert_id, bool):
        raise ValidationFailed('"alert" must be an alert id.', details={"alert": ["An integer."]})
    place_id = alert_place_id(alert_id)
    place_ids = user_place_ids(user)
    if place_id is None or (place_ids is not None and place_id not in place_ids):
        raise NotFound("No such alert.")
    services.alert_acknowledge(alert_id=alert_id, user=user)
    return {"type": "alert.ack.ok", "alert": alert_id}


def readings_stored_evaluate(*, stored: list[Any], **_: Any) -> None:
    """Evaluate the alarm rules on stored readings; a failure is logged, never raised."""
    try:
        # Inside a caller's transaction (REST path) a savepoint, so a failing evaluation does
        # not poison it; in autocommit no wrapping transaction (on SQLite it would hold the
        # write lock for the whole evaluation).
        savepoint = transaction.atomic() if connection.in_atomic_block else None
        with savepoint or contextlib.nullcontext():
            alarms_evaluate(stored=stored)
    except Exception:
        logger.exception("alarm evaluation of %d readings failed", len(stored))


def register() -> None:
    snapshot_extra_register("alerts", snapshot_alerts)
    dashboard_frame_register("alert.ack", alert_ack_frame, reply_key="alert")
    readings_stored.connect(readings_stored_evaluate, dispatch_uid="alerts.evaluate")
