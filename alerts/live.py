"""How alerts plug into the live dashboard channel (monitoring): open alerts and the latest
CTG classification in snapshots, and ``alert.ack`` frames. Registered in ``AlertsConfig.ready``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from alerts import services
from alerts.payload import alert_payload, ctg_classification_payload
from alerts.selectors import (
    alert_get_visible,
    alerts_open_of_patients,
    ctg_classifications_of_patients,
)
from audit.models import Action, Channel, Outcome
from audit.services import actor_for, audit_record
from common.errors import ApplicationError, ValidationFailed
from common.ids import is_id
from monitoring.live.registry import dashboard_frame_register, snapshot_extra_register


def snapshot_alerts(*, patient_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The open alerts of each snapshot patient (one query)."""
    found = alerts_open_of_patients(patient_ids=patient_ids)
    return {patient_id: [alert_payload(a) for a in alerts] for patient_id, alerts in found.items()}


def snapshot_ctg(*, patient_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The latest CTG classification of each snapshot patient that has one (one query);
    the others get null."""
    found = ctg_classifications_of_patients(patient_ids=patient_ids)
    return {patient_id: ctg_classification_payload(row) for patient_id, row in found.items()}


def alert_ack_frame(*, user: User, frame: dict[str, Any]) -> dict[str, Any]:
    """``{"type": "alert.ack", "alert": id}`` from a dashboard."""
    alert_id = frame.get("alert")
    if not is_id(alert_id):
        raise ValidationFailed('"alert" must be an alert id.', details={"alert": ["An integer."]})
    try:
        alert = alert_get_visible(user=user, alert_id=alert_id)  # NotFound: other places'
        with transaction.atomic():  # the acknowledgement and its audit record together
            services.alert_acknowledge(alert_id=alert_id, user=user)
            _ack_audit(user, alert_id, alert.patient_id, Outcome.SUCCESS)
    except ApplicationError as exc:
        _ack_audit(
            user, alert_id, None, Outcome.NOT_FOUND if exc.status == 404 else Outcome.REFUSED
        )
        raise
    return {"type": "alert.ack.ok", "alert": alert_id}


def _ack_audit(user: User, alert_id: int, patient_id: int | None, outcome: str) -> None:
    actor = actor_for(user)
    if actor is not None:
        audit_record(
            actor=actor,
            action=Action.UPDATE,
            outcome=outcome,
            channel=Channel.WS,
            resource_type="alert",
            resource_id=alert_id,
            patient=patient_id,
            detail={"operation": "acknowledge"},
        )


def register() -> None:
    snapshot_extra_register("alerts", snapshot_alerts)
    snapshot_extra_register("ctg", snapshot_ctg, empty=lambda: None)
    dashboard_frame_register("alert.ack", alert_ack_frame, reply_key="alert")
