"""The one representation of an alert outside the database: REST list items share its fields,
dashboards (snapshot and live ``alert`` frames) and webhooks receive it as it is."""

from __future__ import annotations

from typing import Any

from alerts.models import Alert, CtgClassification
from alerts.rules import KIND_METRIC
from common.datetimes import iso


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The contract's alert fields, plus where the patient is (``patient_name``, ``bed``,
    ``ward``, ``place``) and the ``metric`` the alarm is about. Load ``patient`` with the
    alert (``select_related``) when rendering many."""
    patient = alert.patient
    return {
        "id": alert.id,
        "patient": alert.patient_id,
        "patient_name": patient.name,
        "bed": patient.bed,
        "ward": patient.ward_id,
        "place": patient.place_id,
        "device": alert.device_id,
        "kind": alert.kind,
        "metric": KIND_METRIC.get(alert.kind),
        "priority": alert.priority,
        "state": alert.state,
        "message": alert.message,
        "raised_at": iso(alert.raised_at),
        "updated_at": iso(alert.updated_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by_id,
        "resolved_at": iso(alert.resolved_at),
    }


def ctg_classification_payload(row: CtgClassification) -> dict[str, Any]:
    """A patient's latest CTG classification, as snapshots (``ctg``) and live ``ctg`` frames
    carry it."""
    return {
        "classification": row.classification,
        "baseline_bpm": row.baseline_bpm,
        "reasons": list(row.reasons),
        "since": iso(row.since),
        "at": iso(row.at),
    }
