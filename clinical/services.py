"""Writes of places, wards, patients and devices. Business rules live here, so the REST API, the admin
and the demo seed all enforce the same ones.

Who may write what is decided before a service is called (permission classes, and serializers
that offer only the places and wards the caller can see)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Required, TypedDict, Unpack

from django.db import transaction
from django.utils import timezone

from accounts.mfa import mfa_enabled
from accounts.services import user_sessions_end
from clinical.models import Device, Patient, Place, Ward
from clinical.selectors import MFA_PLACE_ROLES, patient_device_id, place_members
from clinical.signals import PatientChange, PatientChanged, device_changed, patient_changed
from clinical.tokens import token_generate, token_hash
from common.errors import ApplicationError, Conflict, ValidationFailed
from common.services import model_assign, model_clean, model_save, model_update

# Clocks of clients drift; a timestamp this far ahead of ours is still "now".
CLOCK_SKEW = timedelta(minutes=5)
# Nobody alive was born before this; earlier dates are typing errors.
EARLIEST_BIRTH = date(1900, 1, 1)


class PlaceFields(TypedDict, total=False):
    """What a writer may set on a place beside its name; the model's defaults stand for the
    rest."""

    kind: str
    address: str
    is_active: bool
    webhook_url: str
    webhook_secret: str
    alert_manager_host: str
    alert_manager_port: int | None
    alarm_audio_pause_seconds: int
    mfa_required_for_doctors: bool


PLACE_FIELDS = ("name", *PlaceFields.__annotations__)
WARD_FIELDS = ("place", "name")


class PatientFields(TypedDict, total=False):
    """What a writer may set on a patient (in the order the API shows them); the model's
    defaults stand for the rest, and an admission time for now."""

    name: Required[str]
    mrn: Required[str]
    date_of_birth: date | None
    sex: Required[str]
    monitoring_profile: str
    place: Required[Place]
    ward: Ward | None
    bed: str
    admitted_at: datetime
    discharged_at: datetime | None


PATIENT_FIELDS = tuple(PatientFields.__annotations__)


# --- Places ----------------------------------------------------------------------------------


def place_validate(*, place: Place) -> None:
    """Rules beyond the model's field checks."""
    if place.webhook_url and not place.webhook_url.lower().startswith(("https://", "http://")):
        raise ValidationFailed(
            "The request is not valid.",
            details={"webhook_url": ["Webhooks are called over HTTP(S) only."]},
        )


def place_create(*, name: str, **fields: Unpack[PlaceFields]) -> Place:
    place = Place(name=name, **fields)
    model_clean(place)
    place_validate(place=place)
    model_save(place)
    return place


def place_update(*, place: Place, data: Mapping[str, Any]) -> Place:
    def validate(place: Place, changed: list[str]) -> None:
        model_clean(place)
        place_validate(place=place)

    with transaction.atomic():
        place, changed = model_update(place, fields=PLACE_FIELDS, data=data, validate=validate)
        if "mfa_required_for_doctors" in changed and place.mfa_required_for_doctors:
            place_mfa_sessions_end(place=place)
    return place


def place_mfa_sessions_end(*, place: Place) -> int:
    """The place now requires a second factor of its doctors: the sessions of those members
    who have none end (REST 401, dashboards 4401), so they enrol at their next sign-in rather
    than go on with a password's session. Returns how many people."""
    people = [
        user
        for user in place_members(place_id=place.pk, roles=MFA_PLACE_ROLES)
        if not mfa_enabled(user)
    ]
    for user in people:
        user_sessions_end(user=user)
    return len(people)


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
    model_clean(ward, exclude=["place"])
    _ward_name_check(ward=ward)
    model_save(ward)
    return ward


def ward_update(*, ward: Ward, data: Mapping[str, Any]) -> Ward:
    if "place" in data and data["place"].pk != ward.place_id:
        # Its patients and devices belong to the place: a ward does not move between places.
        raise ValidationFailed(
            "A ward cannot move to another place.",
            details={"place": ["A ward cannot move to another place."]},
        )

    def validate(ward: Ward, changed: list[str]) -> None:
        model_clean(ward, exclude=["place"])
        _ward_name_check(ward=ward)

    return model_update(ward, fields=WARD_FIELDS, data=data, validate=validate)[0]


# --- Patients --------------------------------------------------------------------------------

# The fields whose change moves a patient (the rest of a change is an update).
_LOCATION_FIELDS = frozenset({"place", "ward", "bed"})


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
    if patient.ward is not None and patient.ward.place_id != patient.place_id:
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
        device = patient.device
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


def patient_create(**fields: Unpack[PatientFields]) -> Patient:
    patient = Patient(**fields)
    model_clean(patient, exclude=["place", "ward"])
    patient_validate(patient=patient, admitting=True)
    _patient_mrn_check(patient=patient)
    model_save(patient)
    if patient.discharged_at is None:
        _patient_changed_announce(patient, PatientChange.ADMITTED)
    return patient


def _patient_changed_announce(
    patient: Patient,
    action: PatientChange,
    *,
    from_place_id: int | None = None,
    from_ward_id: int | None = None,
) -> None:
    """After commit, announce the change so open dashboards follow it at once (the live
    channels listen: ``patient_changed``); nothing is announced of a change rolled back."""
    change = PatientChanged(
        patient_id=patient.pk,
        action=action,
        place_id=patient.place_id,
        ward_id=patient.ward_id,
        from_place_id=patient.place_id if from_place_id is None else from_place_id,
        from_ward_id=from_ward_id,
    )
    transaction.on_commit(lambda: patient_changed.send_robust(sender=Patient, change=change))


def _patient_change(
    changed: list[str], *, was_admitted: bool, admitted: bool
) -> PatientChange | None:
    """The one action a change shows dashboards (a discharge outweighs a move, a move an
    update); None for a discharged patient's record edited."""
    if was_admitted and not admitted:
        return PatientChange.DISCHARGED
    if not admitted:
        return None
    if not was_admitted:
        return PatientChange.ADMITTED
    if _LOCATION_FIELDS & set(changed):
        return PatientChange.MOVED
    return PatientChange.UPDATED


def patient_device_release(*, patient: Patient) -> None:
    """A discharged patient leaves the bed: their monitor is freed for the next admission, and
    no more readings or alarms are filed under them."""
    if patient_device_id(patient) is None:
        return
    device_assign(device=patient.device, patient=None)
    Patient.device.related.set_cached_value(patient, None)


def patient_update(*, patient: Patient, data: Mapping[str, Any]) -> Patient:
    previous_place_id = patient.place_id
    previous_ward_id = patient.ward_id
    was_admitted = patient.discharged_at is None
    changed = model_assign(patient, fields=PATIENT_FIELDS, data=data)
    if not changed:
        return patient
    model_clean(patient, exclude=["place", "ward"])
    patient_validate(patient=patient, moving_place=patient.place_id != previous_place_id)
    if {"mrn", "place"} & set(changed):
        _patient_mrn_check(patient=patient)
    with transaction.atomic():
        model_save(patient, update_fields=changed)
        if was_admitted and patient.discharged_at is not None:
            patient_device_release(patient=patient)
        action = _patient_change(
            changed, was_admitted=was_admitted, admitted=patient.discharged_at is None
        )
        if action is not None:
            _patient_changed_announce(
                patient, action, from_place_id=previous_place_id, from_ward_id=previous_ward_id
            )
    return patient


@transaction.atomic
def patient_discharge(*, patient: Patient, discharged_at: datetime | None = None) -> Patient:
    """Discharge a patient who is still admitted (409 if already discharged); frees the device."""
    if patient.discharged_at is not None:
        raise Conflict("The patient is already discharged.")
    patient.discharged_at = discharged_at or timezone.now()
    patient_validate(patient=patient)
    model_save(patient, update_fields=["discharged_at"])
    patient_device_release(patient=patient)
    _patient_changed_announce(patient, PatientChange.DISCHARGED, from_ward_id=patient.ward_id)
    return patient


# --- Devices ----------------------------------------------------------------------------------


class _Unset:
    """Marks an optional argument that was not given (``None`` is a real value: unassign)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def device_assignment_check(
    *, device: Device | None, place: Place, patient: Patient | None
) -> None:
    """A device monitors a patient of its own place, and a patient has at most one device."""
    if patient is None:
        return
    if patient.place_id != place.id:
        raise ValidationFailed(
            "The device and the patient must be in the same place.",
            details={"patient": ["The patient is not in the device's place."]},
        )
    others = Device.objects.filter(patient=patient)
    if device is not None:
        others = others.exclude(pk=device.pk)
    other = others.only("id", "serial").first()
    if other is not None:
        raise Conflict(
            f"Patient {patient.name} already has device {other.serial} (id {other.id}); "
            "unassign it first.",
            code="patient_has_device",
            details={"patient": [f"Already monitored by device {other.serial} (id {other.id})."]},
        )


def _serial_conflict(serial: str) -> Conflict:
    return Conflict(
        f"A device with serial {serial} already exists.",
        details={"serial": ["A device with this serial already exists."]},
    )


def _device_changed_announce(device: Device) -> None:
    """After commit, announce the change so the device's open connection re-checks itself
    at once: it closes with 4403 when deactivated, 4401 when re-keyed and 4409 when
    reassigned, rather than streaming to the wrong patient until its periodic re-check."""
    device_id = device.id
    transaction.on_commit(lambda: device_changed.send_robust(sender=Device, device_id=device_id))


def _device_conflict(device: Device) -> ApplicationError | None:
    """The exact 409 of a lost race on a unique column of devices."""
    if Device.objects.filter(serial=device.serial).exclude(pk=device.pk).exists():
        return _serial_conflict(device.serial)
    if device.patient_id is not None:
        try:
            device_assignment_check(device=device, place=device.place, patient=device.patient)
        except ApplicationError as exc:
            return exc
    return None


def _save(device: Device, *, update_fields: list[str] | None = None) -> None:
    model_save(device, update_fields=update_fields, conflict=_device_conflict)


class DeviceFields(TypedDict, total=False):
    """What a writer may set on a new device; the model's defaults stand for the rest."""

    serial: Required[str]
    place: Required[Place]
    model: str
    patient: Patient | None
    is_active: bool


def device_create(**fields: Unpack[DeviceFields]) -> tuple[Device, str]:
    """Register a device; returns it with its plain token, which is never stored or shown again."""
    device = Device(**fields)
    if Device.objects.filter(serial=device.serial).exists():
        raise _serial_conflict(device.serial)
    device_assignment_check(device=None, place=device.place, patient=device.patient)
    token = token_generate()
    device.token_hash = token_hash(token)
    _save(device)
    return device, token


def device_update(
    *,
    device: Device,
    serial: str | None = None,
    model: str | None = None,
    place: Place | None = None,
    patient: Patient | None = UNSET,
    is_active: bool | None = None,
) -> Device:
    """Change the given fields; ``patient=None`` unassigns, an omitted ``patient`` keeps it."""
    fields: list[str] = []
    if serial is not None and serial != device.serial:
        if Device.objects.filter(serial=serial).exclude(pk=device.pk).exists():
            raise _serial_conflict(serial)
        device.serial = serial
        fields.append("serial")
    if model is not None and model != device.model:
        device.model = model
        fields.append("model")
    if is_active is not None and is_active != device.is_active:
        device.is_active = is_active
        fields.append("is_active")
    new_place = place if place is not None else device.place
    new_patient = device.patient if patient is UNSET else patient
    if new_place.id != device.place_id or (new_patient and new_patient.id) != device.patient_id:
        device_assignment_check(device=device, place=new_place, patient=new_patient)
        device.place = new_place
        device.patient = new_patient
        fields += ["place", "patient"]
    if fields:
        _save(device, update_fields=fields)
        _device_changed_announce(device)
    return device


def device_assign(*, device: Device, patient: Patient | None) -> Device:
    """Attach the device to a patient of its place, or detach it (``patient=None``)."""
    return device_update(device=device, patient=patient)


def device_rotate_token(*, device: Device) -> str:
    """Issue a new token; the old one stops working at once. Returns the plain new token."""
    token = token_generate()
    device.token_hash = token_hash(token)
    device.save(update_fields=["token_hash"])
    _device_changed_announce(device)
    return token


def device_toggle_active(*, device: Device) -> Device:
    device.is_active = not device.is_active
    device.save(update_fields=["is_active"])
    _device_changed_announce(device)
    return device


def device_touch(*, device: Device, at: datetime | None = None) -> None:
    """Record that the device was heard from (one UPDATE, no read)."""
    at = at or timezone.now()
    Device.objects.filter(pk=device.pk).update(last_seen_at=at)
    device.last_seen_at = at


def devices_seen(*, device_ids: list[int], at: datetime) -> None:
    """Record that these devices were heard from (one UPDATE; presence writes it in bulk)."""
    Device.objects.filter(id__in=device_ids).update(last_seen_at=at)
