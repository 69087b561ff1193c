"""The hospital's ADT feed: HL7 ``ADT^A01``/``A02``/``A03``/``A04``/``A08``/``A11``/``A13``/``A40``
applied to the patients of the sender's place through the clinical services (the same rules,
409s and device release as a REST change), each change audited, idempotent by MSH-10.

- Patient: PID-3 MRN (the ``MR`` repetition, ``pcd01.pid_mrns``) within the sender's place;
  PID-5 name (family^given), PID-7 date of birth, PID-8 sex.
- Location: PV1-3 (point of care^room^bed): the ward is the point of care, matched by name in
  the place (unknown: AE naming it, or created when ``HL7_ADT_CREATE_WARDS`` allows the
  place); the bed is PV1-3.3, else the room.
- Times: PV1-44 admission, PV1-45 discharge, else EVN-2, else now.
- A40: PID-3 is the surviving MRN, MRG-1 the record merged into it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

import hl7
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.services import alerts_patient_end, alerts_patient_merge
from audit.models import Action, ActorType, Channel, Outcome
from audit.services import Actor, Origin, audit_record
from clinical.models import Patient, Place, Ward
from clinical.services import (
    patient_create,
    patient_device_release,
    patient_discharge,
    patient_update,
    ward_create,
)
from common.errors import ApplicationError
from common.validators import control_characters_find
from hl7v2.ack import Answer, ack_build
from hl7v2.models import AdtMessage
from hl7v2.pcd01 import header_check, hl7_datetime, pid_mrns
from hl7v2.vocabulary import AckCode, ErrorCode, Location, Refusal
from monitoring.services import readings_patient_merge

logger = logging.getLogger(__name__)

_SEX = {"F": Patient.Sex.FEMALE, "M": Patient.Sex.MALE}


def _get(segment: hl7.Segment | None, number: int, component: int = 1) -> str:
    if segment is None:
        return ""
    try:
        return str(segment.extract_field(field_num=number, component_num=component)).strip()
    except (IndexError, KeyError):
        return ""


def _segment(message: hl7.Message, name: str) -> hl7.Segment | None:
    try:
        return message.segment(name)
    except KeyError:
        return None


@dataclass(frozen=True, slots=True)
class AdtSource:
    """Who sent the message (for the audit trail) and its place."""

    place_id: int
    application: str
    address: str
    control_id: str


@dataclass(frozen=True, slots=True)
class AdtEvent:
    event: str
    mrn: str
    name: str
    date_of_birth: date | None
    sex: str | None
    ward: str
    bed: str
    at: datetime | None
    admitted_at: datetime | None
    discharged_at: datetime | None
    prior_mrn: str  # MRG-1 of an A40


def adt_read(message: hl7.Message) -> AdtEvent:
    """The event an ADT message carries; ``Refusal`` (AR/AE) for what cannot be taken."""
    msh, _control_id, _version = header_check(message, "ADT")
    event = _get(msh, 9, 2)
    pid = _segment(message, "PID")
    mrns = pid_mrns(pid) if pid is not None else ()
    if not mrns:
        raise Refusal.missing(
            "PID-3 names no MRN (an identifier of type MR, or an untyped one).",
            location=Location("PID", 1, 3),
        )
    pv1 = _segment(message, "PV1")
    evn = _segment(message, "EVN")
    family, given = _get(pid, 5, 1), _get(pid, 5, 2)
    born = _get(pid, 7)
    _one_line(
        (mrns[0], Location("PID", 1, 3)),
        (family, Location("PID", 1, 5)),
        (given, Location("PID", 1, 5)),
        (_get(pv1, 3, 1), Location("PV1", 1, 3)),
        (_get(pv1, 3, 3) or _get(pv1, 3, 2), Location("PV1", 1, 3)),
    )
    return AdtEvent(
        event=event,
        mrn=mrns[0],
        name=" ".join(part for part in (given, family) if part),
        date_of_birth=_date(born, Location("PID", 1, 7)) if born else None,
        sex=_SEX.get(_get(pid, 8).upper(), Patient.Sex.OTHER) if _get(pid, 8) else None,
        ward=_get(pv1, 3, 1),
        bed=_get(pv1, 3, 3) or _get(pv1, 3, 2),
        at=_time(_get(evn, 2), Location("EVN", 1, 2)),
        admitted_at=_time(_get(pv1, 44), Location("PV1", 1, 44)),
        discharged_at=_time(_get(pv1, 45), Location("PV1", 1, 45)),
        prior_mrn=_get(_segment(message, "MRG"), 1, 1),
    )


def _one_line(*values: tuple[str, Location]) -> None:
    """Names, MRNs, wards and beds refuse control characters here as at every entry point
    (``common.validators``)."""
    for value, location in values:
        if control_characters_find(value) is not None:
            raise Refusal.malformed(
                f"{location.segment}-{location.field} must not contain control characters.",
                location=location,
            )


def _date(value: str, location: Location) -> date:
    try:
        return datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        raise Refusal.malformed(
            f"{value!r} is not an HL7 date (YYYYMMDD).", location=location
        ) from None


def _time(value: str, location: Location) -> datetime | None:
    if not value:
        return None
    if len(value) == 8:  # a date alone: its start
        value += "0000"
    return hl7_datetime(value, location=location)


async def adt_ingest(
    *,
    message: hl7.Message,
    text: str,
    places: frozenset[int] | None,
    application: str,
    address: str,
    control_id: str,
) -> Answer:
    """Apply one ADT message for the sender's place; the ACK to send."""
    if places is None or len(places) != 1:
        raise Refusal.rejected(
            "An ADT message needs an enrolled sender of exactly one place (POST /api/places/"
            "<id>/hl7-senders/): the place its MRNs belong to.",
            code="unknown_sender",
            field=3,
        ).for_audit()
    source = AdtSource(
        place_id=next(iter(places)),
        application=application,
        address=address,
        control_id=control_id,
    )
    event = adt_read(message)
    patient = await database_sync_to_async(adt_apply)(event=event, source=source)
    return Answer(
        ack=ack_build(text=text, code=AckCode.ACCEPT),
        code=AckCode.ACCEPT,
        stored=0,
        patients=(patient.id,) if patient is not None else (),
    )


def adt_apply(*, event: AdtEvent, source: AdtSource) -> Patient | None:
    """Apply ``event`` once (a resend of the same MSH-3 and MSH-10 changes nothing)."""
    try:
        with transaction.atomic():
            if AdtMessage.objects.filter(
                place_id=source.place_id,
                sending_application=source.application,
                control_id=source.control_id,
            ).exists():
                return None
            patient = _APPLY[event.event](event, source)
            AdtMessage.objects.create(
                place_id=source.place_id,
                sending_application=source.application,
                control_id=source.control_id,
                event=event.event,
                patient=patient,
            )
            return patient
    except ApplicationError as exc:
        raise Refusal(
            f"{event.event}: {exc.message} {_details(exc)}".strip(),
            code=exc.code,
            hl7_error=ErrorCode.APPLICATION_ERROR,
        ) from exc
    except IntegrityError as exc:  # the same message applied at the same moment elsewhere
        logger.info("ADT %s applied concurrently: %s", source.control_id, exc)
        return None


def _details(exc: ApplicationError) -> str:
    return "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.details or {}).items())


def _patient(event: AdtEvent, source: AdtSource, *, mrn: str | None = None) -> Patient | None:
    return (
        Patient.objects.select_related("place", "ward")
        .filter(place_id=source.place_id, mrn=mrn or event.mrn)
        .first()
    )


def _known(event: AdtEvent, source: AdtSource) -> Patient:
    patient = _patient(event, source)
    if patient is None:
        raise Refusal.unknown(
            f"{event.event}: no patient with MRN {event.mrn!r} in this place.",
            code="unknown_patient",
            location=Location("PID", 1, 3),
        )
    return patient


def ward_for(event: AdtEvent, source: AdtSource) -> Ward | None:
    """The ward PV1-3 names in the sender's place (None when PV1-3 names none)."""
    if not event.ward:
        return None
    ward = Ward.objects.filter(place_id=source.place_id, name=event.ward).first()
    if ward is not None:
        return ward
    if not _creates_wards(source.place_id):
        raise Refusal.unknown(
            f"{event.event}: the ward {event.ward!r} (PV1-3) does not exist in this place.",
            code="unknown_ward",
            location=Location("PV1", 1, 3),
        )
    ward = ward_create(place=Place.objects.get(pk=source.place_id), name=event.ward)
    _audit(source, Action.CREATE, "ward", ward.id, None)
    return ward


def _creates_wards(place_id: int) -> bool:
    allowed = {p.strip() for p in str(settings.HL7_ADT_CREATE_WARDS).split(",") if p.strip()}
    return "*" in allowed or str(place_id) in allowed


def _demographics(event: AdtEvent) -> dict[str, object]:
    data: dict[str, object] = {}
    if event.name:
        data["name"] = event.name
    if event.date_of_birth is not None:
        data["date_of_birth"] = event.date_of_birth
    if event.sex is not None:
        data["sex"] = event.sex
    return data


def _location(event: AdtEvent, source: AdtSource) -> dict[str, object]:
    ward = ward_for(event, source)
    return {} if ward is None else {"ward": ward, "bed": event.bed}


def _admit(event: AdtEvent, source: AdtSource) -> Patient:
    """A01 admit / A04 register: create the patient, or update and (re)admit them."""
    location = _location(event, source)
    patient = _patient(event, source)
    admitted_at = event.admitted_at or event.at or timezone.now()
    if patient is None:
        patient = patient_create(
            place=Place.objects.get(pk=source.place_id),
            mrn=event.mrn,
            name=event.name or event.mrn,
            sex=event.sex or Patient.Sex.OTHER,
            date_of_birth=event.date_of_birth,
            admitted_at=admitted_at,
            ward=location.get("ward"),  # type: ignore[arg-type]
            bed=str(location.get("bed", "")),
        )
        _audit(source, Action.CREATE, "patient", patient.id, patient.id)
        return patient
    data = {**_demographics(event), **location}
    if patient.discharged_at is not None:  # readmitted
        data.update(admitted_at=admitted_at, discharged_at=None)
    patient = patient_update(patient=patient, data=data)
    _audit(source, Action.UPDATE, "patient", patient.id, patient.id)
    return patient


def _transfer(event: AdtEvent, source: AdtSource) -> Patient:
    patient = _known(event, source)
    if not event.ward:
        raise Refusal.missing(
            "A02: PV1-3 (the new location) is required.", location=Location("PV1", 1, 3)
        )
    patient = patient_update(patient=patient, data=_location(event, source))
    _audit(source, Action.UPDATE, "patient", patient.id, patient.id)
    return patient


def _leave(patient: Patient, source: AdtSource, *, at: datetime, note: str) -> Patient:
    """The patient leaves monitoring: discharged, device released, open alarms ended."""
    if patient.discharged_at is None:
        patient = patient_discharge(patient=patient, discharged_at=at)
    else:
        patient_device_release(patient=patient)
    alerts_patient_end(patient_id=patient.id, at=at, note=note)
    _audit(source, Action.UPDATE, "patient", patient.id, patient.id)
    return patient


def _discharge(event: AdtEvent, source: AdtSource) -> Patient:
    patient = _known(event, source)
    at = min(event.discharged_at or event.at or timezone.now(), timezone.now())
    return _leave(patient, source, at=at, note="The patient was discharged (ADT^A03).")


def _update(event: AdtEvent, source: AdtSource) -> Patient:
    patient = _known(event, source)
    patient = patient_update(
        patient=patient, data={**_demographics(event), **_location(event, source)}
    )
    _audit(source, Action.UPDATE, "patient", patient.id, patient.id)
    return patient


def _cancel_admit(event: AdtEvent, source: AdtSource) -> Patient:
    """A11: the admission was entered in error: the patient leaves monitoring as at a
    discharge (the record stays: readings taken meanwhile are part of it)."""
    patient = _known(event, source)
    return _leave(patient, source, at=timezone.now(), note="The admission was cancelled (ADT^A11).")


def _cancel_discharge(event: AdtEvent, source: AdtSource) -> Patient:
    """A13: the discharge was entered in error: the patient is admitted again, in the
    location PV1-3 names (else the ward they had)."""
    patient = _known(event, source)
    data: dict[str, object] = {"discharged_at": None, **_location(event, source)}
    patient = patient_update(patient=patient, data=data)
    _audit(source, Action.UPDATE, "patient", patient.id, patient.id)
    return patient


def _merge(event: AdtEvent, source: AdtSource) -> Patient:
    """A40: the record MRG-1 names is merged into the one PID-3 names: its readings, notes and
    alerts move over, and it is discharged. When PID-3's MRN has no record yet, the prior
    record simply takes that MRN."""
    if not event.prior_mrn:
        raise Refusal.missing(
            "A40: MRG-1 (the prior MRN) is required.", location=Location("MRG", 1, 1)
        )
    prior = _patient(event, source, mrn=event.prior_mrn)
    if prior is None:
        raise Refusal.unknown(
            f"A40: no patient with the prior MRN {event.prior_mrn!r} (MRG-1) in this place.",
            code="unknown_patient",
            location=Location("MRG", 1, 1),
        )
    survivor = _patient(event, source)
    if survivor is None:
        prior = patient_update(patient=prior, data={"mrn": event.mrn, **_demographics(event)})
        _audit(source, Action.UPDATE, "patient", prior.id, prior.id)
        return prior
    if survivor.id == prior.id:
        return survivor
    readings_patient_merge(from_patient_id=prior.id, to_patient_id=survivor.id)
    alerts_patient_merge(from_patient_id=prior.id, to_patient_id=survivor.id)
    if prior.discharged_at is None:
        patient_discharge(patient=prior)
    _audit(
        source, Action.UPDATE, "patient", prior.id, prior.id, detail={"merged_into": survivor.id}
    )
    _audit(
        source, Action.UPDATE, "patient", survivor.id, survivor.id, detail={"merged_from": prior.id}
    )
    return survivor


_APPLY = {
    "A01": _admit,
    "A04": _admit,
    "A02": _transfer,
    "A03": _discharge,
    "A08": _update,
    "A11": _cancel_admit,
    "A13": _cancel_discharge,
    "A40": _merge,
}


def _audit(
    source: AdtSource,
    action: str,
    resource_type: str,
    resource_id: int,
    patient_id: int | None,
    *,
    detail: dict[str, object] | None = None,
) -> None:
    """The audit record of one change an ADT message made (in its transaction), like the
    record of the same change made over REST."""
    audit_record(
        actor=Actor(type=ActorType.HL7, label=source.application[:254]),
        action=action,
        outcome=Outcome.SUCCESS,
        channel=Channel.HL7,
        origin=Origin(address=source.address),
        resource_type=resource_type,
        resource_id=resource_id,
        patient=patient_id,
        detail={"message": source.control_id, **(detail or {})},
    )
