"""The dashboard WebSocket: a subscription's snapshot is one read naming the patients it
showed, live frames record nothing; a refused subscription is recorded; ending every session
closes open dashboards with 4401."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from audit.models import AuditRecord
from testing.factories import DEFAULT_PASSWORD, PatientFactory, WardFactory
from testing.ws import (
    dashboard_connect,
    device_connect,
    expect_close,
    reading,
    receive_type,
    subscribe,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def records():
    return list(AuditRecord.objects.order_by("id"))


async def test_a_snapshot_is_one_read_naming_its_patients(nurse, ward, device):
    second = await sync_to_async(PatientFactory)(ward=ward)
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    found = await sync_to_async(records)()
    assert len(found) == 1
    record = found[0]
    assert (record.channel, record.action, record.resource_type, record.resource_id) == (
        "ws",
        "read",
        "ward",
        str(ward.id),
    )
    assert (record.actor_type, record.actor_id, record.outcome) == ("user", nurse.id, "success")
    assert sorted(record.patient_ids) == sorted([device.patient_id, second.id])
    # Live frames that follow are not recorded.
    monitor = await device_connect(device.token)
    await monitor.send_json_to({"type": "reading", **reading(1)})
    await receive_type(watcher, "readings")
    assert await sync_to_async(AuditRecord.objects.count)() == 1
    await subscribe(watcher, patient=second.id)
    last = (await sync_to_async(records)())[-1]
    assert (last.resource_type, last.patient_id, last.patient_ids) == (
        "patient",
        second.id,
        [second.id],
    )
    await monitor.disconnect()
    await watcher.disconnect()


async def test_an_outsiders_subscription_is_recorded_not_found(nurse):
    elsewhere = await sync_to_async(WardFactory)()
    outsider_patient = await sync_to_async(PatientFactory)(ward=elsewhere)
    watcher = await dashboard_connect(nurse)
    await watcher.send_json_to({"type": "subscribe", "patient": outsider_patient.id})
    frame = await receive_type(watcher, "error")
    assert frame["error"]["code"] == "not_found"
    record = (await sync_to_async(records)())[-1]
    assert (record.action, record.patient_id, record.outcome) == (
        "read",
        outsider_patient.id,
        "not_found",
    )
    await watcher.disconnect()


@pytest.mark.parametrize("how", ["password_change", "logout_all"])
async def test_ending_every_session_closes_open_dashboards(nurse, settings, how):
    settings.DASHBOARD_SESSION_CHECK_SECONDS = 3600  # only the announced end can close it

    def login_and_end():
        client = APIClient()
        tokens = client.post(
            "/api/auth/login/", {"email": nurse.email, "password": DEFAULT_PASSWORD}
        ).json()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        return client, tokens

    client, tokens = await sync_to_async(login_and_end)()
    watcher = await dashboard_connect(token=tokens["access"])
    if how == "password_change":
        body = {"old_password": DEFAULT_PASSWORD, "new_password": "Saffron-Monitor-77"}
        response = await sync_to_async(client.post)("/api/auth/password/change/", body)
        assert response.status_code == 200
    else:
        assert (await sync_to_async(client.post)("/api/auth/logout-all/")).status_code == 205
    assert await expect_close(watcher, wait=3) == 4401
    # The old access token no longer opens a dashboard.
    again = await dashboard_connect()
    await again.send_json_to({"type": "auth", "token": tokens["access"]})
    assert await expect_close(again) == 4401


async def test_an_alert_acknowledged_from_the_dashboard_is_one_update(nurse, patient):
    from alerts.models import Alert

    alert = await sync_to_async(Alert.objects.create)(
        patient=patient, kind="bradycardia", priority="high", message="low"
    )
    foreign = await sync_to_async(Alert.objects.create)(
        patient=await sync_to_async(PatientFactory)(), kind="bradycardia", priority="high"
    )
    watcher = await dashboard_connect(nurse)
    await watcher.send_json_to({"type": "alert.ack", "alert": alert.id})
    assert (await watcher.receive_json_from(timeout=5))["type"] == "alert.ack.ok"
    await watcher.send_json_to({"type": "alert.ack", "alert": foreign.id})
    assert (await watcher.receive_json_from(timeout=5))["error"]["code"] == "not_found"
    got = [
        (r.channel, r.action, r.resource_type, r.resource_id, r.patient_id, r.outcome)
        for r in await sync_to_async(records)()
    ]
    assert got == [
        ("ws", "update", "alert", str(alert.id), patient.id, "success"),
        ("ws", "update", "alert", str(foreign.id), None, "not_found"),
    ]
    await watcher.disconnect()
