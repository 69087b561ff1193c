"""Signals the clinical app sends; higher apps connect to them in ``ready()``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.dispatch import Signal


class PatientChange(StrEnum):
    """What happened to a patient, as dashboards are told (the ``patient`` frame's action)."""

    ADMITTED = "admitted"  # created, or admitted again after a discharge
    MOVED = "moved"  # another ward or bed (or place)
    UPDATED = "updated"  # demographics: name, MRN, date of birth, sex, profile
    DISCHARGED = "discharged"


# Sent after commit when a device was deactivated, re-keyed, reassigned or otherwise changed:
# ``device_id``. Its open connection re-checks itself and closes with the fitting code.
device_changed = Signal()


@dataclass(frozen=True, slots=True)
class PatientChanged:
    """What ``patient_changed`` tells: the patient, the action, where they are now and where
    they were before."""

    patient_id: int
    action: PatientChange
    place_id: int
    ward_id: int | None
    from_place_id: int
    from_ward_id: int | None


# Sent after commit when a patient was admitted, moved (ward or bed), updated or discharged,
# whoever changed them (REST, the admin, the HL7 ADT feed): ``change`` (``PatientChanged``).
# Open dashboards follow at once (the tile appears, moves or leaves).
patient_changed = Signal()
