"""Writes of the monitoring app: devices and the REST side of reading ingest."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from clinical.models import Patient, Place
from config.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from monitoring.groups import device_group
from monitoring.ingest import ReadingIn, StoredReading, Target, reading_parse, readings_ingest
from monitoring.models import Device
from monitoring.pipeline import groups_send_sync
from monitoring.selectors import device_target, patient_targets
from monitoring.tokens import token_generate, token_hash

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
    other = Device.objects.filter(patient=patient).exclude(pk=device.pk if device else None)
    other = other.only("id", "serial").first()
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
    """After commit, tell the device's open connection to re-check itself at once.

    It closes with 4403 when deactivated, 4401 when re-keyed and 4409 when reassigned, rather
    than streaming to the wrong patient until its periodic re-check.
    """
    device_id = device.id
    transaction.on_commit(
        lambda: groups_send_sync([(device_group(device_id), {"type": "device.changed"})])
    )


def _save(device: Device, *, update_fields: list[str] | None = None) -> None:
    """Save, turning a lost race on a unique column into the same 409 as the checks."""
    try:
        with transaction.atomic():
            device.save(update_fields=update_fields)
    except IntegrityError as exc:
        if Device.objects.filter(serial=device.serial).exclude(pk=device.pk).exists():
            raise _serial_conflict(device.serial) from exc
        if device.patient_id is not None:
            device_assignment_check(device=device, place=device.place, patient=device.patient)
        raise


def device_create(
    *,
    serial: str,
    place: Place,
    model: str = "",
    patient: Patient | None = None,
    is_active: bool = True,
) -> tuple[Device, str]:
    """Register a device; returns it with its plain token, which is never stored or shown again."""
    if Device.objects.filter(serial=serial).exists():
        raise _serial_conflict(serial)
    device_assignment_check(device=None, place=place, patient=patient)
    token = token_generate()
    device = Device(
        serial=serial,
        model=model,
        place=place,
        patient=patient,
        is_active=is_active,
        token_hash=token_hash(token),
    )
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


# --- Readings over REST -----------------------------------------------------------------------

# One request carries at most this many readings (a device catching up after ~20 minutes
# offline at 4 Hz); override with settings.RECORDS_MAX_BATCH.
RECORDS_MAX_BATCH = 5000


@dataclass
class RecordsResult:
    """The outcome of one POST of readings: what was stored, acked again, or refused."""

    stored: list[StoredReading] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def _as_batch(payload: Any) -> tuple[list[Any], bool]:
    """The items of the body and whether it was a list (partial acceptance) or one object."""
    if isinstance(payload, list):
        limit = getattr(settings, "RECORDS_MAX_BATCH", RECORDS_MAX_BATCH)
        if not payload:
            raise ValidationFailed(
                "The list of readings is empty.",
                details={"non_field_errors": ["Send at least one reading."]},
            )
        if len(payload) > limit:
            raise ValidationFailed(
                f"At most {limit} readings per request.",
                code="batch_too_large",
                details={"non_field_errors": [f"Send at most {limit} readings per request."]},
            )
        return payload, True
    if isinstance(payload, dict):
        return [payload], False
    raise ValidationFailed(
        "Send one reading object or a list of them.",
        details={"non_field_errors": ["Expected a JSON object or a JSON array."]},
    )


def _finish(
    *,
    parsed: list[tuple[int, ReadingIn]],
    errors: dict[int, ApplicationError],
    items: list[Any],
    targets: list[Target],
) -> RecordsResult:
    """Store the valid readings through the shared ingest entry; report the rest per item."""
    readings = [r for _, r in parsed]
    wards = {t.patient_id: t.ward_id for t in targets}
    stored = readings_ingest(readings=readings, wards=wards) if readings else []
    result = RecordsResult(stored=stored)
    # A seq is "stored" for the first item that carried it; any other item with it is a
    # duplicate (of an earlier request or of an earlier item of this one): acked, stored once.
    fresh = {(r.device_id, r.seq) for r in stored if r.seq is not None}
    for _, r in parsed:
        if r.device_id is None or r.seq is None:
            continue
        key = (r.device_id, r.seq)
        if key in fresh:
            fresh.discard(key)
        else:
            result.duplicates.append(r.seq)
    for index, error in sorted(errors.items()):
        raw = items[index]
        seq = raw.get("seq") if isinstance(raw, dict) else None
        result.rejected.append(
            {"index": index, "seq": seq if isinstance(seq, int) else None, **error.as_dict()}
        )
    return result


def _raise_if_nothing_accepted(
    *, errors: dict[int, ApplicationError], total: int, is_list: bool
) -> None:
    if len(errors) < total:
        return
    if not is_list:
        raise errors[0]
    raise ValidationFailed(
        "None of the readings is valid.",
        details={str(i): e.details or {"non_field_errors": [e.message]} for i, e in errors.items()},
    )


def readings_record_from_device(*, device: Device, payload: Any) -> RecordsResult:
    """A device POSTs its own readings: validated like the WebSocket path, seq required."""
    if not device.is_active:
        raise PermissionDenied("This device is deactivated.", code="device_inactive")
    device_touch(device=device)
    target = device_target(device)
    if target is None:
        raise Conflict(
            "This device is not assigned to a patient; readings cannot be stored.",
            code="device_unassigned",
        )
    items, is_list = _as_batch(payload)
    now = timezone.now()
    parsed: list[tuple[int, ReadingIn]] = []
    errors: dict[int, ApplicationError] = {}
    for index, raw in enumerate(items):
        try:
            parsed.append((index, reading_parse(raw, target=target, require_seq=True, now=now)))
        except ApplicationError as exc:
            errors[index] = exc
    _raise_if_nothing_accepted(errors=errors, total=len(items), is_list=is_list)
    return _finish(parsed=parsed, errors=errors, items=items, targets=[target])


def readings_record_manual(*, user: User, payload: Any) -> RecordsResult:
    """A clinician enters readings by hand: each names a visible patient; seq is optional."""
    items, is_list = _as_batch(payload)
    patient_ids = {
        raw["patient"]
        for raw in items
        if isinstance(raw, dict) and isinstance(raw.get("patient"), int)
    }
    targets = patient_targets(user=user, patient_ids=patient_ids)
    now = timezone.now()
    parsed: list[tuple[int, ReadingIn]] = []
    errors: dict[int, ApplicationError] = {}
    for index, raw in enumerate(items):
        try:
            parsed.append((index, _parse_manual(raw, user=user, targets=targets, now=now)))
        except ApplicationError as exc:
            errors[index] = exc
    _raise_if_nothing_accepted(errors=errors, total=len(items), is_list=is_list)
    return _finish(parsed=parsed, errors=errors, items=items, targets=list(targets.values()))


def _parse_manual(raw: Any, *, user: User, targets: dict[int, Target], now: datetime) -> ReadingIn:
    if not isinstance(raw, dict):
        raise ValidationFailed("A reading must be a JSON object.")
    patient_id = raw.get("patient")
    if not isinstance(patient_id, int) or isinstance(patient_id, bool):
        raise ValidationFailed(
            "The reading is not valid.",
            details={"patient": ["A patient id is required for a manual reading."]},
        )
    target = targets.get(patient_id)
    if target is None:
        raise NotFound("No such patient.", details={"patient": ["No such patient."]})
    return reading_parse(raw, target=target, require_seq=False, now=now, entered_by_id=user.id)
