"""Reads of places, wards and patients, always scoped to what a person may see."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from accounts.selectors import user_place_ids
from clinical.models import Patient, Place, Ward


def place_list_visible(*, user: User) -> QuerySet[Place]:
    """Admins see every place; everyone else only the places they are a member of."""
    places = Place.objects.all()
    place_ids = user_place_ids(user)
    return places if place_ids is None else places.filter(id__in=place_ids)


def ward_list_visible(*, user: User) -> QuerySet[Ward]:
    wards = Ward.objects.all()
    place_ids = user_place_ids(user)
    return wards if place_ids is None else wards.filter(place_id__in=place_ids)


def patient_list_visible(*, user: User) -> QuerySet[Patient]:
    """Patients with their device (reverse one-to-one) joined, so lists make no extra query."""
    patients = Patient.objects.select_related("device")
    place_ids = user_place_ids(user)
    return patients if place_ids is None else patients.filter(place_id__in=place_ids)


def patient_device_id(patient: Patient) -> int | None:
    """The id of the device assigned to the patient, or None (the reverse side may be absent)."""
    try:
        device = patient.device  # type: ignore[attr-defined]
    except Patient.device.RelatedObjectDoesNotExist:  # type: ignore[attr-defined]
        return None
    return device.id if device is not None else None
