from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from clinical.models import Device
from monitoring.ingest import batcher, presence
from monitoring.models import Reading
from testing.factories import DeviceFactory, PatientFactory
from testing.ws import device_connect, expect_close, reading, receive_type

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def _count(device) -> int:
    return await sync_to_async(Reading.objects.filter(device=device).count)()


async def test_missing_or_bad_token_closes_4401(device):
    for token in (None, "", "not-a-token"):
        communicator = await device_connect(token)
        assert await expect_close(communicator) == 4401


async def test_bearer_scheme_is_not_a_device_token(device):
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    communicator = WebsocketCommunicator(
        application, "/ws/devices/", headers=[(b"authorization", f"Bearer {device.token}".encode())]
    )
    await communicator.connect()
    assert await expect_close(communicator) == 4401


async def test_inactive_device_is_refused_4403(device):
    await sync_to_async(Device.objects.filter(id=device.id).update)(is_active=False)
    communicator = await device_connect(device.token)
    assert await expect_close(communicator) == 4403


async def test_unassigned_device_is_refused_4409(place):
    device = await sync_to_async(DeviceFactory)(patient=None, place=place)
    communicator = await device_connect(device.token)
    assert await expect_close(communicator) == 4409


async def test_reading_is_acked_only_after_it_is_stored(device):
    communicator = await device_connect(device.token)
    await communicator.send_json_to({"type": "reading", **reading(1, bpm=72)})
    ack = await receive_type(communicator, "ack")
    assert ack == {"type": "ack", "seqs": [1]}
    # The ack means durable: the row is there the moment the ack arrives.
    stored = await sync_to_async(Reading.objects.get)(device=device, seq=1)
    assert (stored.value, stored.patient_id, stored.metric) == (72, device.patient_id, "heart_rate")
    await communicator.disconnect()


async def test_acks_are_never_sent_before_the_commit_they_acknowledge(device, monkeypatch):
    """The store is held inside its transaction (rows inserted, not committed) until the test
    lets it go: no ack may leave meanwhile, and at the moment each ack is sent its readings
    are visible to another database connection."""
    import threading

    from monitoring.consumers import DeviceConsumer

    inside, release = threading.Event(), threading.Event()
    real_queue = batcher.readings_queue

    def held_queue(stored):  # runs in the store's transaction, after the INSERT
        error = real_queue(stored)
        inside.set()
        release.wait(10)
        return error

    monkeypatch.setattr(batcher, "readings_queue", held_queue)
    sent: list[tuple[list[int], int]] = []
    real_send = DeviceConsumer.send

    async def send(self, text_data=None, bytes_data=None, close=False):
        content = json.loads(text_data) if text_data else {}
        if content.get("type") == "ack":
            visible = await sync_to_async(
                Reading.objects.filter(device=device, seq__in=content["seqs"]).count
            )()
            sent.append((content["seqs"], visible))
        await real_send(self, text_data=text_data, bytes_data=bytes_data, close=close)

    monkeypatch.setattr(DeviceConsumer, "send", send)
    communicator = await device_connect(device.token)
    for seq in (1, 2, 3):
        await communicator.send_json_to({"type": "reading", **reading(seq)})
    await asyncio.to_thread(inside.wait, 10)
    if connection.vendor == "postgresql":  # SQLite's test database locks the table instead
        assert await _count(device) == 0  # inserted, not committed
    assert sent == [] and await communicator.receive_nothing(timeout=0.2)
    release.set()
    acked: list[int] = []
    while len(acked) < 3:
        acked += (await receive_type(communicator, "ack"))["seqs"]
    assert sorted(acked) == [1, 2, 3]
    assert sorted(seq for seqs, _ in sent for seq in seqs) == [1, 2, 3]  # every ack was seen
    assert all(visible == len(seqs) for seqs, visible in sent), sent
    await communicator.disconnect()


async def test_one_ack_per_connection_per_flush(device, settings):
    """Frames of one connection stored in one flush are acknowledged by one ack frame."""
    settings.INGEST_FLUSH_INTERVAL = 60  # flushed by the test, not by the clock
    communicator = await device_connect(device.token)
    for seq in (1, 2, 3):
        await communicator.send_json_to({"type": "reading", **reading(seq)})
    # Frames are handled in turn: when the pong comes, the three readings are queued.
    await communicator.send_json_to({"type": "ping"})
    assert await receive_type(communicator, "pong")
    await batcher.batcher_get().drain()
    assert await receive_type(communicator, "ack") == {"type": "ack", "seqs": [1, 2, 3]}
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


async def test_batch_frame_is_acked_and_duplicates_are_stored_once(device):
    communicator = await device_connect(device.token)
    await communicator.send_json_to({"type": "readings", "items": [reading(s) for s in (1, 2, 3)]})
    assert (await receive_type(communicator, "ack"))["seqs"] == [1, 2, 3]
    # Resend after a lost ack: acked again, stored once.
    await communicator.send_json_to({"type": "readings", "items": [reading(s) for s in (2, 3, 4)]})
    assert (await receive_type(communicator, "ack"))["seqs"] == [2, 3, 4]
    await communicator.send_json_to({"type": "reading", **reading(4)})
    assert (await receive_type(communicator, "ack"))["seqs"] == [4]
    assert await _count(device) == 4
    await communicator.disconnect()


async def test_invalid_reading_gets_error_with_seq_and_others_are_stored(device):
    communicator = await device_connect(device.token)
    items = [reading(1), reading(2, bpm=500), reading(3, metric="fetal_heart_rate"), reading(4)]
    await communicator.send_json_to({"type": "readings", "items": items})
    frames = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
    errors = {f["seq"]: f["error"] for f in frames if f["type"] == "error"}
    assert errors[2]["code"] == "validation_error" and "bpm" in errors[2]["details"]
    assert "metric" in errors[3]["details"]  # fetal HR only for obstetric patients
    assert [f["seqs"] for f in frames if f["type"] == "ack"] == [[1, 4]]
    assert await _count(device) == 2
    await communicator.disconnect()


@pytest.mark.frames_malformed
async def test_reading_without_seq_is_rejected(device):
    communicator = await device_connect(device.token)
    frame = reading(1)
    del frame["seq"]
    await communicator.send_json_to({"type": "reading", **frame})
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["seq"] is None
    assert "seq" in error["error"]["details"]
    assert await _count(device) == 0


@pytest.mark.frames_malformed
@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{not json", "parse_error"),
        ("[1, 2]", "invalid_frame"),
        ('{"seq": 1}', "invalid_frame"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "readings", "items": {"seq": 1}}', "validation_error"),
    ],
)
async def test_bad_frames_get_an_error_without_seq_and_the_connection_stays_open(
    device, payload, code
):
    communicator = await device_connect(device.token)
    await communicator.send_to(text_data=payload)
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == "error" and "seq" not in error
    assert error["error"]["code"] == code
    assert set(error["error"]) == {"code", "message", "details"}
    await communicator.send_json_to({"type": "reading", **reading(7)})
    assert (await receive_type(communicator, "ack"))["seqs"] == [7]
    await communicator.disconnect()


@pytest.mark.frames_malformed
async def test_frame_and_batch_limits(device, settings):
    settings.WS_MAX_FRAME_BYTES = 2000
    settings.WS_MAX_BATCH_ITEMS = 5
    communicator = await device_connect(device.token)
    await communicator.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 3000}))
    assert (await communicator.receive_json_from(timeout=5))["error"]["code"] == "frame_too_large"
    items = [reading(s) for s in range(1, 7)]
    await communicator.send_json_to({"type": "readings", "items": items})
    assert (await communicator.receive_json_from(timeout=5))["error"]["code"] == "batch_too_large"
    assert await _count(device) == 0
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


async def test_many_devices_share_one_batched_insert(ward, django_assert_max_num_queries):
    patients = [await sync_to_async(PatientFactory)(ward=ward) for _ in range(5)]
    devices = [await sync_to_async(DeviceFactory)(patient=p) for p in patients]
    communicators = [await device_connect(d.token) for d in devices]
    ingest = batcher.batcher_get()
    flushes = ingest.flushes
    await asyncio.gather(
        *(
            c.send_json_to({"type": "readings", "items": [reading(s) for s in range(1, 21)]})
            for c in communicators
        )
    )
    for c in communicators:
        assert len((await receive_type(c, "ack"))["seqs"]) == 20
    # 100 readings from 5 connections took a handful of flushes, not 100 inserts.
    assert ingest.flushes - flushes <= 5
    assert await sync_to_async(Reading.objects.count)() == 100
    for c in communicators:
        await c.disconnect()


async def test_presence_marks_device_online_and_updates_last_seen(device):
    communicator = await device_connect(device.token)
    await communicator.send_json_to({"type": "ping"})
    await communicator.receive_json_from(timeout=5)
    assert await sync_to_async(presence.devices_online)([device.id]) == {device.id}
    refreshed = await sync_to_async(Device.objects.get)(id=device.id)
    assert refreshed.last_seen_at is not None
    await communicator.disconnect()
    await asyncio.sleep(0.2)
    assert await sync_to_async(presence.devices_online)([device.id]) == set()


async def test_deactivating_a_connected_device_closes_it(device):
    from channels.layers import get_channel_layer

    from monitoring.live.groups import device_group

    communicator = await device_connect(device.token)
    await communicator.send_json_to({"type": "ping"})
    await communicator.receive_json_from(timeout=5)
    await sync_to_async(Device.objects.filter(id=device.id).update)(is_active=False)
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(device_group(device.id), {"type": "device.changed"})
    assert await expect_close(communicator) == 4403


async def device_streaming(device, monkeypatch, *, presence_interval: float):
    """The device connected, its first reading acked; the connection writes its presence (and
    re-checks the device) every ``presence_interval`` seconds; its own periodic re-check
    never comes."""
    from monitoring.consumers import device as consumers

    async def never(delay: float) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(consumers, "_recheck_sleep", never)
    monkeypatch.setattr(presence, "PRESENCE_INTERVAL", presence_interval)
    communicator = await device_connect(device.token)
    await communicator.send_json_to({"type": "reading", **reading(1)})
    await receive_type(communicator, "ack")
    return communicator


@pytest.mark.parametrize(
    ("change", "code"),
    [("reassign", 4409), ("unassign", 4409), ("deactivate", 4403), ("rotate", 4401)],
)
async def test_device_changes_close_the_connection_without_any_event(
    device, monkeypatch, change, code
):
    # Nobody sends device.changed: the presence write notices the change by itself.
    communicator = await device_streaming(device, monkeypatch, presence_interval=0.2)
    other = await sync_to_async(PatientFactory)(ward=device.patient.ward)
    updates: dict[str, dict[str, object]] = {
        "reassign": {"patient": other},
        "unassign": {"patient": None},
        "deactivate": {"is_active": False},
        "rotate": {"token_hash": "0" * 64},
    }
    await sync_to_async(Device.objects.filter(id=device.id).update)(**updates[change])
    assert await expect_close(communicator, wait=10) == code


@pytest.mark.parametrize(
    ("service", "code"),
    [("toggle", 4403), ("rotate", 4401), ("unassign", 4409)],
)
async def test_admin_changes_through_services_close_the_connection_at_once(
    device, monkeypatch, service, code
):
    from clinical import services

    # Push the connection's own re-checks out of reach: only the announced change can close it.
    communicator = await device_streaming(device, monkeypatch, presence_interval=3600)
    await asyncio.sleep(1.0)  # let the presence write of the connection and reading settle
    fresh = await sync_to_async(Device.objects.select_related("patient", "place").get)(id=device.id)
    change = {
        "toggle": lambda: services.device_toggle_active(device=fresh),
        "rotate": lambda: services.device_rotate_token(device=fresh),
        "unassign": lambda: services.device_assign(device=fresh, patient=None),
    }[service]
    await sync_to_async(change)()
    assert await expect_close(communicator, wait=3) == code


async def test_each_connection_rechecks_its_device_on_a_phase_of_its_own(device, monkeypatch):
    """The periodic re-check first waits a random part of the period (connections that opened
    together do not query together), then re-checks."""
    from monitoring.consumers import device as consumers

    delays: list[float] = []
    first_wait_over = asyncio.Event()

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 1:
            await first_wait_over.wait()
        else:
            await asyncio.Event().wait()  # (no more re-checks in this test)

    monkeypatch.setattr(consumers, "_recheck_sleep", sleep)
    monkeypatch.setattr(consumers.random, "uniform", lambda low, high: (low + high) / 3)
    communicator = await device_connect(device.token)
    await communicator.send_json_to({"type": "ping"})
    await receive_type(communicator, "pong")
    assert delays == [consumers.DEVICE_RECHECK_SECONDS / 3]
    # The device is deactivated and nobody says so: the re-check after the phase finds it.
    await sync_to_async(Device.objects.filter(id=device.id).update)(is_active=False)
    first_wait_over.set()
    assert await expect_close(communicator, wait=10) == 4403
