from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from alerts.models import Alert
from monitoring.live.publish import live_publish
from monitoring.models import Reading
from monitoring.readings import reading_parse
from monitoring.services import readings_ingest
from testing.factories import (
    DeviceFactory,
    PatientFactory,
    PlaceFactory,
    UserFactory,
    WardFactory,
    ingest_target,
)
from testing.ws import (
    dashboard_connect,
    device_connect,
    reading,
    receive_type,
    subscribe,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_snapshot_has_latest_reading_per_metric_device_status_and_open_alerts(
    nurse, ward, obstetric_patient, django_assert_max_num_queries
):
    device = await sync_to_async(DeviceFactory)(patient=obstetric_patient)
    target = ingest_target(device)
    now = timezone.now()

    def seed():
        rows = [
            {
                "seq": 1,
                "metric": "heart_rate",
                "bpm": 80,
                "recorded_at": (now - timedelta(seconds=20)).isoformat(),
            },
            {
                "seq": 2,
                "metric": "heart_rate",
                "bpm": 84,
                "recorded_at": (now - timedelta(seconds=10)).isoformat(),
            },
            {
                "seq": 3,
                "metric": "fetal_heart_rate",
                "bpm": 140,
                "recorded_at": (now - timedelta(seconds=5)).isoformat(),
            },
        ]
        readings_ingest(readings=[reading_parse(r, target=target, require_seq=True) for r in rows])
        Alert.objects.create(
            patient=obstetric_patient,
            device=device,
            kind="bradycardia",
            priority="high",
            message="FHR low",
        )
        Alert.objects.create(
            patient=obstetric_patient, kind="old", priority="low", message="x", state="resolved"
        )
        # Patients without a device or readings are still listed.
        PatientFactory(ward=ward)

    await sync_to_async(seed)()
    communicator = await dashboard_connect(nurse)
    snapshot = await subscribe(communicator, ward=ward.id)
    assert snapshot["type"] == "snapshot" and snapshot["ward"] == ward.id
    assert len(snapshot["patients"]) == 2
    entry = next(p for p in snapshot["patients"] if p["id"] == obstetric_patient.id)
    assert entry["bed"] == obstetric_patient.bed and entry["monitoring_profile"] == "obstetric"
    assert entry["latest"]["heart_rate"]["bpm"] == 84 and entry["latest"]["heart_rate"]["seq"] == 2
    assert entry["latest"]["fetal_heart_rate"]["bpm"] == 140
    assert entry["device"]["id"] == device.id and entry["device"]["online"] is False
    assert [a["kind"] for a in entry["alerts"]] == ["bradycardia"]
    assert entry["alerts"][0]["state"] == "active" and entry["alerts"][0]["priority"] == "high"

    # Device online shows in the next snapshot.
    device_ws = await device_connect(device.token)
    status = await receive_type(communicator, "device.status")
    assert status["device"] == device.id and status["online"] is True
    snapshot = await subscribe(communicator, patient=obstetric_patient.id)
    assert snapshot["patient"] == obstetric_patient.id
    assert snapshot["patients"][0]["device"]["online"] is True
    await device_ws.disconnect()
    status = await receive_type(communicator, "device.status")
    assert status["online"] is False and status["status"] == "offline"
    await communicator.disconnect()


def test_snapshot_queries_do_not_grow_with_patients(ward, django_assert_num_queries):
    from monitoring.snapshot import dashboard_snapshot

    def make(n):
        for _ in range(n):
            d = DeviceFactory(patient=PatientFactory(ward=ward))
            readings_ingest(
                readings=[reading_parse(reading(1), target=ingest_target(d), require_seq=True)]
            )

    # Patients with devices, their latest readings, and one per extra: open alerts, CTG.
    make(2)
    with django_assert_num_queries(4):
        assert len(dashboard_snapshot(ward_id=ward.id)) == 2
    make(6)
    with django_assert_num_queries(4):
        assert len(dashboard_snapshot(ward_id=ward.id)) == 8


async def assert_acked_but_not_delivered(device_ws, item: dict, watcher) -> None:
    """The device sends ``item``: it is acked, and ``watcher`` receives nothing."""
    await device_ws.send_json_to({"type": "reading", **item})
    await receive_type(device_ws, "ack")
    assert await watcher.receive_nothing(timeout=0.5)


async def test_live_readings_reach_subscribers_and_not_other_places(nurse, device, ward):
    outsider_place = await sync_to_async(PlaceFactory)()
    outsider_ward = await sync_to_async(WardFactory)(place=outsider_place)
    outsider = await sync_to_async(UserFactory)(places=[outsider_place])
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    stranger = await dashboard_connect(outsider)
    await subscribe(stranger, ward=outsider_ward.id)

    device_ws = await device_connect(device.token)
    await device_ws.send_json_to({"type": "readings", "items": [reading(1, 70), reading(2, 71)]})
    await receive_type(device_ws, "ack")
    frame = await receive_type(watcher, "readings")
    assert [(i["seq"], i["bpm"]) for i in frame["items"]] == [(1, 70), (2, 71)]  # one frame
    item = frame["items"][0]
    assert item["patient"] == device.patient_id and item["device"] == device.id
    assert item["metric"] == "heart_rate" and "recorded_at" in item
    assert await stranger.receive_nothing(timeout=0.5)

    # A resent duplicate is acked but not broadcast again.
    await assert_acked_but_not_delivered(device_ws, reading(2, 71), watcher)
    for c in (watcher, stranger, device_ws):
        await c.disconnect()


async def test_ward_and_patient_subscriptions_deliver_each_reading_once(nurse, device, ward):
    both = await dashboard_connect(nurse)
    await subscribe(both, ward=ward.id)
    await subscribe(both, patient=device.patient_id)
    only_patient = await dashboard_connect(nurse)
    await subscribe(only_patient, patient=device.patient_id)
    device_ws = await device_connect(device.token)
    await device_ws.send_json_to({"type": "reading", **reading(1)})
    for c in (both, only_patient):
        frame = await receive_type(c, "readings")
        assert [i["seq"] for i in frame["items"]] == [1]
    assert await both.receive_nothing(timeout=0.5)

    # After unsubscribing from the ward, the patient subscription still delivers.
    await both.send_json_to({"type": "unsubscribe", "ward": ward.id})
    assert await both.receive_json_from(timeout=5) == {"type": "unsubscribed", "ward": ward.id}
    await device_ws.send_json_to({"type": "reading", **reading(2)})
    assert [i["seq"] for i in (await receive_type(both, "readings"))["items"]] == [2]
    await both.send_json_to({"type": "unsubscribe", "patient": device.patient_id})
    await both.receive_json_from(timeout=5)
    await assert_acked_but_not_delivered(device_ws, reading(3), both)
    for c in (both, only_patient, device_ws):
        await c.disconnect()


async def test_rest_ingested_readings_reach_dashboards(nurse, device, ward):
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    raw = reading(5, bpm=66)
    await sync_to_async(readings_ingest)(
        readings=[reading_parse(raw, target=ingest_target(device), require_seq=True)],
        wards={device.patient_id: ward.id},
    )
    frame = await receive_type(watcher, "readings")
    assert [(i["seq"], i["bpm"], i["patient"]) for i in frame["items"]] == [
        (5, 66, device.patient_id)
    ]
    await watcher.disconnect()


async def test_alert_events_are_forwarded_as_alert_frames(nurse, ward):
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    alert = {"id": 9, "patient": 1, "ward": ward.id, "kind": "bradycardia", "state": "active"}
    await sync_to_async(live_publish)(
        [(f"ward.{ward.id}", {"type": "alert.event", "alert": alert})]
    )
    assert await receive_type(watcher, "alert") == {"type": "alert", "alert": alert}
    await watcher.disconnect()


@pytest.mark.frames_malformed
async def test_alert_ack_calls_the_alerts_service_and_checks_visibility(
    nurse, patient, monkeypatch
):
    from alerts import live

    calls = []
    monkeypatch.setattr(
        live.services,
        "alert_acknowledge",
        lambda *, alert_id, user: calls.append((alert_id, user.id)),
    )
    alert = await sync_to_async(Alert.objects.create)(
        patient=patient, kind="bradycardia", priority="high", message="low"
    )
    foreign = await sync_to_async(Alert.objects.create)(
        patient=await sync_to_async(PatientFactory)(),
        kind="bradycardia",
        priority="high",
        message="x",
    )
    watcher = await dashboard_connect(nurse)
    await watcher.send_json_to({"type": "alert.ack", "alert": alert.id})
    assert await watcher.receive_json_from(timeout=5) == {"type": "alert.ack.ok", "alert": alert.id}
    await watcher.send_json_to({"type": "alert.ack", "alert": foreign.id})
    assert (await watcher.receive_json_from(timeout=5))["error"]["code"] == "not_found"
    await watcher.send_json_to({"type": "alert.ack", "alert": "x"})
    assert (await watcher.receive_json_from(timeout=5))["error"]["code"] == "validation_error"
    assert calls == [(alert.id, nurse.id)]
    await watcher.disconnect()


async def test_withdrawn_place_drops_the_subscription(nurse, ward, device, settings):
    settings.DASHBOARD_SESSION_CHECK_SECONDS = 0.2
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    await sync_to_async(nurse.places.clear)()
    frame = await receive_type(watcher, "error")
    assert frame["error"]["code"] == "forbidden" and frame["ward"] == ward.id
    device_ws = await device_connect(device.token)
    await device_ws.send_json_to({"type": "reading", **reading(1)})
    await receive_type(device_ws, "ack")
    assert await watcher.receive_nothing(timeout=0.5)
    for c in (watcher, device_ws):
        await c.disconnect()
    assert await sync_to_async(Reading.objects.count)() == 1


async def test_alert_published_to_ward_and_patient_groups_arrives_once(nurse, patient, ward):
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    await subscribe(watcher, patient=patient.id)
    alert = {"id": 3, "patient": patient.id, "ward": ward.id, "state": "acknowledged"}
    event = {"type": "alert.event", "action": "acknowledged", "alert": alert}
    await sync_to_async(live_publish)(
        [(f"patient.{patient.id}", event), (f"ward.{ward.id}", event)]
    )
    assert (await receive_type(watcher, "alert"))["alert"] == alert
    assert await watcher.receive_nothing(timeout=0.5)
    await watcher.disconnect()


async def test_patient_subscription_hears_only_its_patient_and_follows_a_transfer(
    nurse, device, ward, settings
):
    from clinical.models import Patient

    settings.DASHBOARD_SESSION_CHECK_SECONDS = 0.2
    neighbour = await sync_to_async(DeviceFactory)(
        patient=await sync_to_async(PatientFactory)(ward=ward)
    )
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, patient=device.patient_id)
    ours = await device_connect(device.token)
    theirs = await device_connect(neighbour.token)
    await theirs.send_json_to({"type": "reading", **reading(1)})
    await receive_type(theirs, "ack")
    await ours.send_json_to({"type": "reading", **reading(2)})
    frame = await receive_type(watcher, "readings")
    assert [(i["patient"], i["seq"]) for i in frame["items"]] == [(device.patient_id, 2)]

    other_ward = await sync_to_async(WardFactory)(place=ward.place)
    await sync_to_async(Patient.objects.filter(id=device.patient_id).update)(ward=other_ward)
    await asyncio.sleep(0.6)  # the session check notices the transfer
    await ours.disconnect()
    ours = await device_connect(device.token)  # reconnects with the new assignment
    await ours.send_json_to({"type": "reading", **reading(3)})
    frame = await receive_type(watcher, "readings")
    assert [i["seq"] for i in frame["items"]] == [3]
    assert frame["items"][0]["ward"] == other_ward.id
    for c in (watcher, ours, theirs):
        await c.disconnect()
