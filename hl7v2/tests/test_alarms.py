"""An HL7 episode goes the whole way a WebSocket one does: stored, on the dashboard live, and
evaluated into the same alert."""

from __future__ import annotations

from datetime import timedelta

import hl7
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from alerts.models import Alert
from hl7v2.mllp import mllp_exchange
from hl7v2.pcd01 import ObservationOut, oru_r01_build
from testing.ws import dashboard_connect, receive_type, subscribe

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("clean_alarm_state"),
]


def episode(device, bpm: int, seconds: int, *, control_id: str) -> str:
    """``seconds + 1`` heart rates at ``bpm``, one a second, ending now, in one ORU^R01."""
    start = timezone.now() - timedelta(seconds=seconds)
    observations = [
        ObservationOut(str(bpm), at=start + timedelta(seconds=i), device=device.serial)
        for i in range(seconds + 1)
    ]
    return oru_r01_build(control_id=control_id, observations=observations, mrn=device.patient.mrn)


async def test_an_hl7_bradycardia_episode_raises_the_websocket_paths_alert(
    mllp, nurse, device, ward, alarms_drain
):
    host, port = mllp.address
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)

    (ack,) = await mllp_exchange(host, port, [episode(device, 35, 15, control_id="BRADY-1")])
    assert str(hl7.parse(ack).segment("MSA")(1)) == "AA"
    live = await receive_type(watcher, "readings")
    assert {(i["patient"], i["device"], i["bpm"]) for i in live["items"]} == {
        (device.patient_id, device.id, 35)
    }

    assert await sync_to_async(alarms_drain)() == 16
    alert = (await receive_type(watcher, "alert"))["alert"]
    # What the WebSocket path raises for the same episode (alerts/tests/test_alarms_ingest.py).
    assert (alert["kind"], alert["priority"], alert["state"]) == ("bradycardia", "high", "active")
    assert (alert["patient"], alert["device"], alert["ward"]) == (
        device.patient_id,
        device.id,
        ward.id,
    )

    # The gateway resends the message (its ACK was lost): nothing new, no second alert.
    (again,) = await mllp_exchange(host, port, [episode(device, 35, 15, control_id="BRADY-1")])
    assert str(hl7.parse(again).segment("MSA")(1)) == "AA"
    assert await sync_to_async(alarms_drain)() == 0
    assert await sync_to_async(Alert.objects.filter(patient=device.patient).count)() == 1
    await watcher.disconnect()
