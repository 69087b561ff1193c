from __future__ import annotations

from monitoring.ingest import Target
from monitoring.models import Device
from monitoring.tokens import token_hash


def device_by_token(token: str) -> Device | None:
    """The device a token belongs to (active or not), with its patient loaded."""
    if not token:
        return None
    return Device.objects.select_related("patient").filter(token_hash=token_hash(token)).first()


def device_target(device: Device) -> Target | None:
    """Where this device's readings go, or None when it has no patient."""
    patient = device.patient
    if patient is None:
        return None
    return Target(
        patient_id=patient.id,
        place_id=patient.place_id,
        ward_id=patient.ward_id,
        profile=patient.monitoring_profile,
        device_id=device.id,
    )


# --- Live dashboard -----------------------------------------------------------------------
OPEN_ALERT_STATES = ("active", "acknowledged")


def subscription_scope(*, ward_id: int | None = None, patient_id: int | None = None):
    """``(place_id, ward_id)`` of a ward or patient a dashboard subscribes to, or None."""
    from clinical.models import Patient, Ward

    if ward_id is not None:
        place_id = Ward.objects.filter(id=ward_id).values_list("place_id", flat=True).first()
        return None if place_id is None else (place_id, ward_id)
    row = Patient.objects.filter(id=patient_id).values_list("place_id", "ward_id").first()
    return None if row is None else (row[0], row[1])


def alert_as_dict(alert) -> dict:
    """An alert as dashboards receive it (the contract's alert fields, plus ``ward``)."""
    return {
        "id": alert.id,
        "patient": alert.patient_id,
        "ward": getattr(alert, "ward_id", None),
        "device": alert.device_id,
        "kind": alert.kind,
        "priority": alert.priority,
        "state": alert.state,
        "message": alert.message,
        "raised_at": _iso(alert.raised_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by_id,
        "resolved_at": _iso(alert.resolved_at),
    }


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def dashboard_snapshot(*, ward_id: int | None = None, patient_id: int | None = None) -> list[dict]:
    """Every patient in scope with bed, profile, device status, latest reading per metric and
    open alerts. Four queries and one Redis call, whatever the number of patients.

    A ward's snapshot lists its admitted (not discharged) patients.
    """
    from django.db.models import F, OuterRef, Subquery

    from clinical.models import Alert, Patient
    from monitoring.models import Metric, Reading
    from monitoring.pipeline import devices_online

    patients = Patient.objects.select_related("device")
    if ward_id is not None:
        patients = patients.filter(ward_id=ward_id, discharged_at__isnull=True)
    else:
        patients = patients.filter(id=patient_id)
    metrics = [m.value for m in Metric]
    latest = {
        f"latest_{m}": Subquery(
            Reading.objects.filter(patient=OuterRef("pk"), metric=m)
            .order_by("-recorded_at", "-id")
            .values("id")[:1]
        )
        for m in metrics
    }
    patients = list(patients.annotate(**latest).order_by("bed", "id"))
    reading_ids = [
        getattr(p, f"latest_{m}") for p in patients for m in metrics if getattr(p, f"latest_{m}")
    ]
    readings = {
        r.id: r
        for r in Reading.objects.filter(id__in=reading_ids).only(
            "id", "metric", "bpm", "recorded_at", "seq"
        )
    }
    alerts: dict[int, list[dict]] = {}
    for alert in Alert.objects.filter(
        patient__in=[p.id for p in patients], state__in=OPEN_ALERT_STATES
    ).annotate(ward_id=F("patient__ward_id")):
        alerts.setdefault(alert.patient_id, []).append(alert_as_dict(alert))

    devices = {p.id: _patient_device(p) for p in patients}
    online = devices_online(d.id for d in devices.values() if d is not None)
    result = []
    for p in patients:
        device = devices[p.id]
        latest_by_metric = {}
        for m in metrics:
            reading = readings.get(getattr(p, f"latest_{m}"))
            if reading is not None:
                latest_by_metric[m] = {
                    "bpm": reading.bpm,
                    "recorded_at": reading.recorded_at.isoformat(),
                    "seq": reading.seq,
                }
        result.append(
            {
                "id": p.id,
                "name": p.name,
                "mrn": p.mrn,
                "date_of_birth": _iso(p.date_of_birth),
                "sex": p.sex,
                "monitoring_profile": p.monitoring_profile,
                "place": p.place_id,
                "ward": p.ward_id,
                "bed": p.bed,
                "device": None
                if device is None
                else {
                    "id": device.id,
                    "serial": device.serial,
                    "is_active": device.is_active,
                    "online": device.id in online,
                    "last_seen_at": _iso(device.last_seen_at),
                },
                "latest": latest_by_metric,
                "alerts": alerts.get(p.id, []),
            }
        )
    return result


def _patient_device(patient) -> Device | None:
    try:
        return patient.device
    except Device.DoesNotExist:
        return None


def alert_place_id(alert_id: int) -> int | None:
    from clinical.models import Alert

    return Alert.objects.filter(id=alert_id).values_list("patient__place_id", flat=True).first()
