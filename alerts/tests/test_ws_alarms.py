"""End to end through the alarm hook: a bradycardia streamed by a device becomes an alert frame
on the ward's dashboard, and ``alert.ack`` from the dashboard acknowledges it."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from testing.ws import dashboard_connect, device_connect, episode, receive_type, subscribe

# Alarm rule state lives in Redis keyed by patient id; ids repeat across test runs.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("clean_alarm_state"),
]


async def test_streamed_bradycardia_raises_an_alert_that_the_dashboard_acknowledges(
    nurse, device, ward, alarms_drain
):
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    await subscribe(watcher, patient=device.patient_id)  # two scopes, still one frame
    ws = await device_connect(device.token)
    await ws.send_json_to({"type": "readings", "items": episode(35, 54)})
    await receive_type(ws, "ack")
    # The readings are broadcast first (before the ack), the alert follows the evaluation.
    frame = await receive_type(watcher, "readings")
    assert len(frame["items"]) == 55
    assert await sync_to_async(alarms_drain)() == 55  # the evaluator's work, done here
    frame = await receive_type(watcher, "alert", wait=10)
    assert frame["alert"]["patient"] == device.patient_id
    assert frame["alert"]["kind"] == "bradycardia" and frame["alert"]["state"] == "active"
    await watcher.send_json_to({"type": "alert.ack", "alert": frame["alert"]["id"]})
    acknowledged = None
    while acknowledged is None:
        f = await watcher.receive_json_from(timeout=5)
        if f["type"] == "alert":
            acknowledged = f
    assert acknowledged["alert"]["state"] == "acknowledged"
    assert acknowledged["alert"]["acknowledged_by"] == nurse.id
    for c in (watcher, ws):
        await c.disconnect()
