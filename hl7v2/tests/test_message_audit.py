"""HL7 v2: one audit record per message answered, with its patient, written before the ACK."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from audit.models import AuditRecord
from hl7v2.pcd01 import ObservationOut, oru_r01_build
from hl7v2.tests.test_listener import hr, msa, oru, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_each_message_is_one_record_with_its_patient(mllp, device):
    accepted, refused = await send(
        mllp,
        oru("AUD-1", device, hr(80, device)),
        oru_r01_build(control_id="AUD-2", observations=[ObservationOut("70", device="NOPE")]),
    )
    assert msa(accepted)[0] == "AA" and msa(refused)[0] in ("AE", "AR")
    records = await sync_to_async(lambda: list(AuditRecord.objects.order_by("id")))()
    got = [
        (r.channel, r.actor_type, r.action, r.resource_id, r.patient_id, r.outcome) for r in records
    ]
    assert got == [
        ("hl7", "hl7", "receive", "AUD-1", device.patient_id, "success"),
        ("hl7", "hl7", "receive", "AUD-2", None, "refused"),
    ]
    assert records[0].address == "127.0.0.1"
