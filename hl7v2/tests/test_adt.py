"""The ADT feed over the real MLLP listener: admit, transfer, update, discharge, cancel,
merge; wards; idempotency by MSH-10; the audit trail."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from alerts.models import Alert
from audit.models import AuditRecord
from clinical.models import Device, Patient, Ward
from hl7v2.models import Hl7Sender
from hl7v2.tests.test_listener import err, msa, send
from monitoring.models import Reading
from testing.factories import DeviceFactory, PatientFactory, WardFactory
from testing.hl7 import adt_message as adt

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
async def pas(place):
    """The hospital's patient administration system, enrolled for the place."""
    return await sync_to_async(Hl7Sender.objects.create)(
        place=place, name="PAS", address="127.0.0.1", sending_application="PAS"
    )


async def _patient(place, mrn: str) -> Patient | None:
    return await sync_to_async(
        lambda: Patient.objects.filter(place=place, mrn=mrn).select_related("ward").first()
    )()


async def test_admit_transfer_update_discharge_over_mllp(mllp, place, pas):
    icu = await sync_to_async(WardFactory)(place=place, name="ICU")
    maternity = await sync_to_async(WardFactory)(place=place, name="MATERNITY")
    acks = await send(
        mllp,
        adt("A01", "ADT-1", mrn="MRN-A", ward="ICU", bed="7"),
        adt("A02", "ADT-2", mrn="MRN-A", ward="MATERNITY", bed="3"),
        adt("A08", "ADT-3", mrn="MRN-A", name="KING^ADA", born="19900202"),
    )
    assert [msa(a) for a in acks] == [("AA", "ADT-1"), ("AA", "ADT-2"), ("AA", "ADT-3")]
    patient = await _patient(place, "MRN-A")
    assert patient is not None
    assert (patient.name, patient.ward_id, patient.bed) == ("ADA KING", maternity.id, "3")
    assert str(patient.date_of_birth) == "1990-02-02" and patient.sex == "F"
    assert patient.discharged_at is None and icu.id != maternity.id

    # A monitor on the patient with an open alarm: the discharge frees it and ends the alarm.
    device = await sync_to_async(DeviceFactory)(place=place, patient=patient)
    alert = await sync_to_async(Alert.objects.create)(
        patient=patient, device=device, kind="bradycardia", priority="high", message="HR 35"
    )
    (discharged,) = await send(mllp, adt("A03", "ADT-4", mrn="MRN-A", ward="MATERNITY"))
    assert msa(discharged) == ("AA", "ADT-4")
    patient = await _patient(place, "MRN-A")
    assert patient is not None and patient.discharged_at is not None
    assert (await sync_to_async(Device.objects.get)(pk=device.pk)).patient_id is None
    assert (await sync_to_async(Alert.objects.get)(pk=alert.pk)).state == "resolved"

    records = await sync_to_async(
        lambda: list(AuditRecord.objects.filter(channel="hl7", resource_type="patient"))
    )()
    assert sorted(r.action for r in records) == ["create", "update", "update", "update"]
    assert {r.patient_id for r in records} == {patient.id}
    assert all(r.outcome == "success" and r.actor_type == "hl7" for r in records)


async def test_a_resent_message_changes_nothing_twice(mllp, place, pas):
    await sync_to_async(WardFactory)(place=place, name="ICU")
    message = adt("A01", "ONCE-1", mrn="MRN-B", ward="ICU", bed="1")
    first, again = await send(mllp, message, message)
    assert msa(first) == msa(again) == ("AA", "ONCE-1")
    changes = AuditRecord.objects.filter(channel="hl7", resource_type="patient")
    assert await sync_to_async(changes.count)() == 1


async def test_an_unknown_ward_is_refused_naming_it_unless_the_place_allows(
    settings, mllp, place, pas
):
    (refused,) = await send(mllp, adt("A01", "WARD-1", mrn="MRN-C", ward="NEONATAL", bed="2"))
    assert msa(refused) == ("AE", "WARD-1")
    assert err(refused)[2] == "unknown_ward"
    assert "NEONATAL" in str(refused.segment("ERR")(8))
    assert str(refused.segment("ERR")(2)) == "PV1^1^3"
    assert await _patient(place, "MRN-C") is None

    settings.HL7_ADT_CREATE_WARDS = str(place.id)
    (taken,) = await send(mllp, adt("A01", "WARD-1", mrn="MRN-C", ward="NEONATAL", bed="2"))
    assert msa(taken) == ("AA", "WARD-1")  # not stored the first time: applied now
    patient = await _patient(place, "MRN-C")
    assert patient is not None and patient.ward is not None and patient.ward.name == "NEONATAL"


async def test_cancel_admit_and_cancel_discharge_undo(mllp, place, pas):
    ward = await sync_to_async(WardFactory)(place=place, name="ICU")
    acks = await send(
        mllp,
        adt("A01", "U-1", mrn="MRN-D", ward="ICU", bed="4"),
        adt("A11", "U-2", mrn="MRN-D"),
    )
    assert [msa(a)[0] for a in acks] == ["AA", "AA"]
    patient = await _patient(place, "MRN-D")
    assert patient is not None and patient.discharged_at is not None
    (undone,) = await send(mllp, adt("A13", "U-3", mrn="MRN-D", ward="ICU", bed="4"))
    assert msa(undone) == ("AA", "U-3")
    patient = await _patient(place, "MRN-D")
    assert patient is not None and patient.discharged_at is None
    assert (patient.ward_id, patient.bed) == (ward.id, "4")


async def test_a_merge_moves_every_reading_and_alert_to_the_surviving_record(mllp, place, pas):
    ward = await sync_to_async(WardFactory)(place=place)
    survivor = await sync_to_async(PatientFactory)(ward=ward, mrn="MRN-KEEP")
    prior = await sync_to_async(PatientFactory)(ward=ward, mrn="MRN-OLD")
    device = await sync_to_async(DeviceFactory)(place=place, patient=prior)
    now = timezone.now()

    def rows():
        Reading.objects.bulk_create(
            [
                Reading(patient=p, device=device if p == prior else None, metric="heart_rate",
                        value=60 + i, recorded_at=now - timedelta(seconds=i), seq=i + 1 if p == prior else None)
                for p in (prior, survivor)
                for i in range(50)
            ]
        )  # fmt: skip
        Alert.objects.create(patient=prior, kind="bradycardia", priority="high", message="x")

    await sync_to_async(rows)()
    (ack,) = await send(mllp, adt("A40", "M-1", mrn="MRN-KEEP", prior="MRN-OLD"))
    assert msa(ack) == ("AA", "M-1")
    counts = await sync_to_async(
        lambda: (
            Reading.objects.filter(patient=survivor).count(),
            Reading.objects.filter(patient=prior).count(),
            Alert.objects.filter(patient=survivor).count(),
        )
    )()
    assert counts == (100, 0, 1)
    merged = await _patient(place, "MRN-OLD")
    assert merged is not None and merged.discharged_at is not None


async def test_an_adt_for_an_unknown_patient_is_ae(mllp, place, pas):
    (refused,) = await send(mllp, adt("A02", "NOPE-1", mrn="MRN-NONE", ward="ICU"))
    assert msa(refused) == ("AE", "NOPE-1")
    assert err(refused)[2] == "unknown_patient"


async def test_adt_needs_an_enrolled_sender(mllp, place):
    (refused,) = await send(mllp, adt("A01", "ANON-1", mrn="MRN-E"))
    assert msa(refused) == ("AR", "ANON-1")
    assert err(refused)[2] == "unknown_sender"
    assert await sync_to_async(Ward.objects.count)() == 0


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"name": "LOVE\tLACE^ADA"}, "PID^1^5"),
        ({"mrn": "MRN\x07D"}, "PID^1^3"),
        ({"ward": "ICU\x1bN"}, "PV1^1^3"),
        ({"ward": "ICU", "bed": "7\x00"}, "PV1^1^3"),
    ],
)
async def test_a_control_character_in_a_name_is_refused_like_at_every_entry_point(
    mllp, place, pas, fields, where
):
    await sync_to_async(WardFactory)(place=place, name="ICU")
    message = adt("A01", "CTRL-1", **{"mrn": "MRN-D", **fields})
    (refused,) = await send(mllp, message)
    assert msa(refused) == ("AE", "CTRL-1")
    assert err(refused)[2] == "validation_error"
    assert str(refused.segment("ERR")(2)) == where
    assert await sync_to_async(Patient.objects.filter(place=place).count)() == 0


async def test_pipelined_events_apply_in_the_order_sent(monkeypatch, mllp, place, pas):
    """The admission's sender check is held until the transfer's has begun (or 2 s passed):
    a listener that read both at once would apply the A02 first, to no patient."""
    from hl7v2 import services
    from hl7v2.pcd01 import msh_value

    await sync_to_async(WardFactory)(place=place, name="ICU")
    await sync_to_async(WardFactory)(place=place, name="MATERNITY")
    transfer_begun = asyncio.Event()
    checked = services.message_source

    async def held(message, **kwargs):
        if msh_value(message, 10) == "ORD-2":
            transfer_begun.set()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(transfer_begun.wait(), 2)
        return await checked(message, **kwargs)

    monkeypatch.setattr(services, "message_source", held)
    acks = await send(
        mllp,
        adt("A01", "ORD-1", mrn="MRN-O", ward="ICU", bed="1"),
        adt("A02", "ORD-2", mrn="MRN-O", ward="MATERNITY", bed="2"),
    )
    assert [msa(a) for a in acks] == [("AA", "ORD-1"), ("AA", "ORD-2")]
    patient = await _patient(place, "MRN-O")
    assert patient is not None and patient.bed == "2"
