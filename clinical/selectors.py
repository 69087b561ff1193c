"""Reads of places, wards, patients and devices: the one "visible to this person" selector
per entity, used by views, consumers and every higher app."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet

from accounts.models import Role, User
from accounts.selectors import user_place_ids, users_active
from clinical.models import Device, Patient, Place, Ward
from clinical.tokens import token_hash
from common.errors import NotFound
from common.rows import rows_where_in


def places_visible(*, user: User) -> QuerySet[Place]:
    """Admins see every place; everyone else only the places they are a member of."""
    places = Place.objects.all()
    place_ids = user_place_ids(user)
    return places if place_ids is None else places.filter(id__in=place_ids)


def wards_visible(*, user: User) -> QuerySet[Ward]:
    wards = Ward.objects.all()
    place_ids = user_place_ids(user)
    return wards if place_ids is None else wards.filter(place_id__in=place_ids)


def patients_visible(*, user: User) -> QuerySet[Patient]:
    """Patients with their device (reverse one-to-one) joined, so lists make no extra query."""
    patients = Patient.objects.select_related("device")
    place_ids = user_place_ids(user)
    return patients if place_ids is None else patients.filter(place_id__in=place_ids)


def patient_visible_get(*, user: User, patient_id: int) -> Patient:
    """The patient, if the person may see them; otherwise NotFound (no existence leak)."""
    patient = patients_visible(user=user).filter(id=patient_id).first()
    if patient is None:
        raise NotFound("No such patient.")
    return patient


def devices_visible(*, user: User) -> QuerySet[Device]:
    """Devices of the places a person may see (all for admins)."""
    devices = Device.objects.select_related("patient")
    place_ids = user_place_ids(user)
    return devices if place_ids is None else devices.filter(place_id__in=place_ids)


# The roles a place's "second factor required for doctors" applies to: its doctors, and its
# administrators (whose access is wider still). Nurses are not asked: the issue of a shared
# ward station's login is not the one a second factor answers.
MFA_PLACE_ROLES = (Role.DOCTOR, Role.ADMIN)


def place_requires_mfa(user: User) -> bool:
    """Whether a place the person belongs to requires a second factor of their role."""
    if user.role not in MFA_PLACE_ROLES:
        return False
    return Place.objects.filter(members=user, mfa_required_for_doctors=True).exists()


def place_members(*, place_id: int, roles: Iterable[str] | None = None) -> QuerySet[User]:
    """Active members of a place, optionally only those with one of ``roles``."""
    return users_active(roles=roles).filter(places=place_id)


def patient_device_id(patient: Patient) -> int | None:
    """The id of the device assigned to the patient, or None (the reverse side may be absent)."""
    try:
        device = patient.device
    except Patient.device.RelatedObjectDoesNotExist:
        return None
    return device.id


def patient_device(patient: Patient) -> Device | None:
    return patient.device if patient_device_id(patient) is not None else None


def patient_profiles(*, patient_ids: Iterable[int]) -> dict[int, str]:
    """Monitoring profile by patient id (one query; the alarm evaluator reads it for every
    batch, so without the ORM's compiling)."""
    return dict(
        rows_where_in(Patient, fields=("id", "monitoring_profile"), key="id", values=patient_ids)
    )


def patient_scope(*, patient_id: int) -> tuple[int, int | None] | None:
    """``(place_id, ward_id)`` of a patient, or None."""
    row = Patient.objects.filter(id=patient_id).values_list("place_id", "ward_id").first()
    return None if row is None else (row[0], row[1])


def ward_place_id(*, ward_id: int) -> int | None:
    return Ward.objects.filter(id=ward_id).values_list("place_id", flat=True).first()


def ward_patients_admitted(*, ward_id: int) -> QuerySet[Patient]:
    """A ward's admitted (not discharged) patients with their devices, in bed order."""
    return (
        Patient.objects.select_related("device")
        .filter(ward_id=ward_id, discharged_at__isnull=True)
        .order_by("bed", "id")
    )


def patient_with_device(*, patient_id: int) -> QuerySet[Patient]:
    return Patient.objects.select_related("device").filter(id=patient_id)


# --- Devices ----------------------------------------------------------------------------------


def device_by_token(token: str) -> Device | None:
    """The device a token belongs to (active or not), with its patient loaded."""
    if not token:
        return None
    return Device.objects.select_related("patient").filter(token_hash=token_hash(token)).first()


def device_get(*, device_id: int) -> Device | None:
    return Device.objects.select_related("patient").filter(id=device_id).first()


def devices_by_serial(*, serials: Iterable[str]) -> dict[str, Device]:
    """The devices with these serials, with their patients (one query); unknown ones absent."""
    rows = Device.objects.select_related("patient").filter(serial__in=set(serials))
    return {device.serial: device for device in rows}


def devices_assignment(*, device_ids: Iterable[int]) -> dict[int, tuple[int | None, str, bool]]:
    """``(patient_id, token_hash, is_active)`` by device id (one query)."""
    return {
        device_id: (patient_id, token, is_active)
        for device_id, patient_id, token, is_active in Device.objects.filter(
            id__in=list(device_ids)
        ).values_list("id", "patient_id", "token_hash", "is_active")
    }


def devices_monitoring() -> list[tuple[int, int, str, datetime | None]]:
    """``(device id, patient id, serial, last_seen_at)`` of every active device that monitors
    an admitted patient."""
    return list(
        Device.objects.filter(
            is_active=True, patient__isnull=False, patient__discharged_at__isnull=True
        ).values_list("id", "patient_id", "serial", "last_seen_at")
    )
