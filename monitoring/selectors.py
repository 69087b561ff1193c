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
