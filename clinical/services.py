"""Writes of places, wards and patients. Business rules live here, so the REST API, the admin
and the demo seed all enforce the same ones.

Who may write what is decided before a service is called (permission classes, and serializers
that offer only the places and wards the caller can see)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from clinical.models import Patient, Place, Ward
from clinical.selectors import patient_device_id
from config.errors import Conflict, ValidationFailed
from monitoring.services import device_assign

# Clocks of clients drift; a timestamp this far ahead of ours is still "now".
CLOCK_SKEW = timedelta(minutes=5)
# Nobody alive was born before this; earlier dates are typing errors.
EARLIEST_BIRTH = date(1900, 1, 1)

PLACE_FIELDS = ("name", "kind", "address", "is_active", "webhook_url", "webhook_secret")
WARD_FIELDS = ("place", "name")
PATIENT_FIELDS = (
    "name",
    "mrn",
    "date_of_birth",
    "sex",
    "monitoring_profile",
    "place",
    "ward",
    "bed",
    "admitted_at",
    "discharged_at",
)


def _assign(instance: models.Model, *, fields: Iterable[str], data: Mapping[str, Any]) -> list[str]:
    """Copy the given fields from ``data`` onto ``instance``; return the names that changed."""
    changed = []
    for name in fields:
        if name in data and getattr(instance, name) != data[name]:
            setattr(instance, name, data[name])
            changed.append(name)
    return changed


def _clean_fields(instance: models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Field-level checks of the model (lengths, choices, URLs) as one ``ValidationFailed``.

    Uniqueness is checked by the services themselves (a 409), foreign keys arrive as objects."""
    try:
        instance.full_clean(
            exclude=list(exclude), validate_unique=False, validate_constraints=False
        )
    except DjangoValidationError as exc:
        raise ValidationFailed("The request is not valid.", details=exc.message_dict) from exc


def _save(instance: models.Model, *, update_fields: list[str] | None = None) -> None:
    """Save, turning a lost race on a unique constraint into a 409."""
    try:
        with transaction.atomic():
            instance.save(update_fields=update_fields)
    except IntegrityError as exc:
        raise Conflict("This conflicts with an existing record.") from exc


# --- Places ----------------------------------------------------------------------------------


def place_validate(*, place: Place) -> None:
    """Rules beyond the model's field checks."""
    if place.webhook_url and not place.webhook_url.lower().startswith(("https://", "http://")):
        raise ValidationFailed(
            "The request is not valid.",
            details={"webhook_url": ["Webhooks are called over HTTP(S) only."]},
        )


def place_create(
    *,
    name: str,
    kind: str = Place.Kind.HOSPITAL,
    address: str = "",
    is_active: bool = True,
    webhook_url: str = "",
    webhook_secret: str = "",
) -> Place:
    place = Place(
        name=name,
        kind=kind,
        address=address,
        is_active=is_active,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    )
    _clean_fields(place)
    place_validate(place=place)
    _save(place)
    return place


def place_update(*, place: Place, data: Mapping[str, Any]) -> Place:
    changed = _assign(place, fields=PLACE_FIELDS, data=data)
    if changed:
        _clean_fields(place)
        place_validate(place=place)
        _save(place, update_fields=changed)
    return place


# --- Wards -----------------------------------------------------------------------------------


def _ward_name_check(*, ward: Ward) -> None:
    taken = Ward.objects.filter(place_id=ward.place_id, name=ward.name).exclude(pk=ward.pk)
    if taken.exists():
        raise Conflict(
            "This place already has a ward with this name.",
            details={"name": ["This place already has a ward with this name."]},
        )


def ward_create(*, place: Place, name: str) -> Ward:
    ward = Ward(place=place, name=name)
    _clean_fields(ward, exclude=["place"])
    _ward_name_check(ward=ward)
    _save(ward)
    return ward


def ward_update(*, ward: Ward, data: Mapping[str, Any]) -> Ward:
    if "place" in data and data["place"].pk != ward.place_id:
        # Its patients and devices belong to the place: a ward does not move between places.
        raise ValidationFailed(
            "A ward cannot move to another place.",
            details={"place": ["A ward cannot move to another place."]},
        )
    changed = _assign(ward, fields=WARD_FIELDS, data=data)
    if changed:
        _clean_fields(ward, exclude=["place"])
        _ward_name_check(ward=ward)
        _save(ward, update_fields=changed)
    return ward


# --- Patients --------------------------------------------------------------------------------


def _latest_date_on_earth() -> date:
    # Dates of birth are local dates; in UTC+14 it is already tomorrow for part of our day.
    return (timezone.now() + timedelta(hours=14)).date()


def patient_validate(
    *, patient: Patient, moving_place: bool = False, admitting: bool = False
) -> None:
    """The rules every patient obeys, reported together as one ``ValidationFailed``.

    ``admitting``: the patient enters a place now (created, or moved to another place), which
    must then be active."""
    errors: dict[str, list[str]] = {}
    now = timezone.now()
    if (admitting or moving_place) and not patient.place.is_active:
        errors["place"] = ["The place is not active; patients cannot be admitted to it."]
    if patient.ward_id is not None and patient.ward.place_id != patient.place_id:
        errors["ward"] = ["The ward belongs to another place than the patient."]
    born = patient.date_of_birth
    if born and born > _latest_date_on_earth():
        errors["date_of_birth"] = ["The date of birth is in the future."]
    elif born and born < EARLIEST_BIRTH:
        errors["date_of_birth"] = [f"The date of birth is before {EARLIEST_BIRTH:%Y}."]
    admitted_at: datetime | None = patient.admitted_at
    if admitted_at and admitted_at > now + CLOCK_SKEW:
        errors["admitted_at"] = ["The admission time is in the future."]
    elif (
        admitted_at
        and born
        and "date_of_birth" not in errors
        and (admitted_at + timedelta(hours=14)).date() < born
    ):
        errors["admitted_at"] = ["The admission is before the date of birth."]
    discharged_at: datetime | None = patient.discharged_at
    if discharged_at is not None:
        if admitted_at and discharged_at <= admitted_at:
            errors["discharged_at"] = ["The discharge must come after the admission."]
        elif discharged_at > now + CLOCK_SKEW:
            errors["discharged_at"] = ["The discharge time is in the future."]
    if moving_place and patient_device_id(patient) is not None:
        device = patient.device  # type: ignore[attr-defined]
        if device.place_id != patient.place_id:
            errors.setdefault("place", []).append(
                "The patient's device belongs to the previous place; unassign it first."
            )
    if errors:
        raise ValidationFailed("The request is not valid.", details=errors)


def _patient_mrn_check(*, patient: Patient) -> None:
    taken = Patient.objects.filter(place_id=patient.place_id, mrn=patient.mrn).exclude(
        pk=patient.pk
    )
    if taken.exists():
        raise Conflict(
            "A patient with this medical record number already exists in this place.",
            details={"mrn": ["A patient with this medical record number already exists here."]},
        )


def patient_create(
    *,
    place: Place,
    name: str,
    mrn: str,
    sex: str,
    monitoring_profile: str = Patient.Profile.ADULT,
    date_of_birth: date | None = None,
    ward: Ward | None = None,
    bed: str = "",
    admitted_at: datetime | None = None,
    discharged_at: datetime | None = None,
) -> Patient:
    patient = Patient(
        place=place,
        name=name,
        mrn=mrn,
        sex=sex,
        monitoring_profile=monitoring_profile,
        date_of_birth=date_of_birth,
        ward=ward,
        bed=bed,
        admitted_at=admitted_at or timezone.now(),
        discharged_at=discharged_at,
    )
    _clean_fields(patient, exclude=["place", "ward"])
    patient_validate(patient=patient, admitting=True)
    _patient_mrn_check(patient=patient)
    _save(patient)
    return patient


def patient_device_release(*, patient: Patient) -> None:
    """A discharged patient leaves the bed: their monitor is freed for the next admission, and
    no more readings or alarms are filed under them."""
    if patient_device_id(patient) is None:
        return
    device_assign(device=patient.device, patient=None)  # type: ignore[attr-defined]
    Patient.device.related.set_cached_value(patient, None)  # type: ignore[attr-defined]


def patient_update(*, patient: Patient, data: Mapping[str, Any]) -> Patient:
    previous_place_id = patient.place_id
    was_admitted = patient.discharged_at is None
    changed = _assign(patient, fields=PATIENT_FIELDS, data=data)
    if not changed:
        return patient
    _clean_fields(patient, exclude=["place", "ward"])
    patient_validate(patient=patient, moving_place=patient.place_id != previous_place_id)
    if {"mrn", "place"} & set(changed):
        _patient_mrn_check(patient=patient)
    with transaction.atomic():
        _save(patient, update_fields=changed)
        if was_admitted and patient.discharged_at is not None:
            patient_device_release(patient=patient)
    return patient


@transaction.atomic
def patient_discharge(*, patient: Patient, discharged_at: datetime | None = None) -> Patient:
    """Discharge a patient who is still admitted (409 if already discharged); frees the device."""
    if patient.discharged_at is not None:
        raise Conflict("The patient is already discharged.")
    patient.discharged_at = discharged_at or timezone.now()
    patient_validate(patient=patient)
    _save(patient, update_fields=["discharged_at"])
    patient_device_release(patient=patient)
    return patient
