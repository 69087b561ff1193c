"""Alarm evaluation of both ingest paths: the device WebSocket and REST records queue readings
on the readings stream, the evaluator (drained here explicitly) raises the alerts;
acknowledgement from the dashboard."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from alerts.models import Alert
from testing.clients import device_client
from testing.ws import dashboard_connect, device_connect, episode, receive_type, subscribe

pytestmark = pytest.mark.usefixtures("clean_alarm_state")


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
class TestWebSocketPath:
    async def test_a_streamed_episode_raises_one_alert_on_the_dashboard(
        self, nurse, device, ward, alarms_drain
    ):
        watcher = await dashboard_connect(nurse)
        await subscribe(watcher, ward=ward.id)
        await subscribe(watcher, patient=device.patient_id)  # both scopes: still one frame
        device_ws = await device_connect(device.token)

        await device_ws.send_json_to({"type": "readings", "items": episode(35, 15)})
        await receive_type(device_ws, "ack")
        assert await sync_to_async(alarms_drain)() == 16
        frame = await receive_type(watcher, "alert")
        alert = frame["alert"]
        assert (alert["kind"], alert["priority"], alert["state"]) == (
            "bradycardia",
            "high",
            "active",
        )
        assert alert["patient"] == device.patient_id and alert["device"] == device.id
        assert alert["ward"] == ward.id

        # More of the same episode: no new alert, no new frame.
        await device_ws.send_json_to({"type": "readings", "items": episode(36, 5, first_seq=100)})
        await receive_type(device_ws, "ack")
        assert await sync_to_async(alarms_drain)() == 6
        while True:
            other = await watcher.receive_json_from(timeout=1)
            assert other["type"] == "readings", other
            if other["items"][-1]["seq"] == 105:
                break
        assert await watcher.receive_nothing(timeout=0.5)
        assert await sync_to_async(Alert.objects.filter(patient=device.patient).count)() == 1

        # The nurse acknowledges it from the dashboard (the real alerts service).
        await watcher.send_json_to({"type": "alert.ack", "alert": alert["id"]})
        assert (await receive_type(watcher, "alert.ack.ok"))["alert"] == alert["id"]
        acked = (await receive_type(watcher, "alert"))["alert"]
        assert (acked["id"], acked["state"], acked["acknowledged_by"]) == (
            alert["id"],
            "acknowledged",
            nurse.id,
        )
        for communicator in (watcher, device_ws):
            await communicator.disconnect()

    async def test_acknowledging_a_resolved_alert_from_the_dashboard_is_a_conflict(
        self, nurse, patient, ward
    ):
        alert = await sync_to_async(Alert.objects.create)(
            patient=patient, kind="bradycardia", priority="high", message="m", state="resolved"
        )
        watcher = await dashboard_connect(nurse)
        await watcher.send_json_to({"type": "alert.ack", "alert": alert.id})
        frame = await receive_type(watcher, "error")
        assert frame["error"]["code"] == "conflict"
        await watcher.disconnect()


@pytest.mark.django_db
def test_rest_records_are_evaluated_and_fanned_out(
    device,
    doctor,
    nurse,
    smtp_server,
    celery_eager,
    django_capture_on_commit_callbacks,
    alarms_drain,
):
    client = device_client(device.token)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/records/", episode(45, 25), format="json")
        assert alarms_drain() == 26
    assert response.status_code in (200, 201), response.content[:300]
    alert = Alert.objects.get(patient=device.patient)
    assert (alert.kind, alert.priority) == ("bradycardia", "medium")
    assert len(smtp_server.to(doctor.email)) == 1 and len(smtp_server.to(nurse.email)) == 1


@pytest.mark.django_db
def test_a_clinicians_manual_readings_are_evaluated(patient, nurse_api, alarms_drain):
    items = [{**item, "patient": patient.id} for item in episode(150, 12)]
    for item in items:
        item.pop("seq")
    response = nurse_api.post("/api/records/", items, format="json")
    assert response.status_code in (200, 201), response.content[:300]
    alarms_drain()
    assert Alert.objects.get(patient=patient).kind == "tachycardia"
