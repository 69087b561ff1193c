"""The device and dashboard channels under bad frames and storage failures: an error frame
the client can parse, never a 1011, and the connection keeps working (issue: hardening,
defects 1-4). The property-based version of the bad-frame tests is in test_ws_fuzz.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connection

from monitoring.consumers import device as consumers
from monitoring.ingest import batcher
from monitoring.models import Reading
from monitoring.readings import readings_store_isolating
from testing.factories import DeviceFactory, PatientFactory, ReadingInFactory
from testing.ws import dashboard_connect, device_connect, expect_close, reading, receive_type

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

NESTED = "[" * 100_000 + "]" * 100_000


async def _count(device) -> int:
    return await sync_to_async(Reading.objects.filter(device=device).count)()


async def _still_acks(communicator, seq: int) -> None:
    await communicator.send_json_to({"type": "reading", **reading(seq)})
    assert (await receive_type(communicator, "ack"))["seqs"] == [seq]


@pytest.mark.parametrize(
    ("payload", "code", "has_seq"),
    [
        (
            '{"type": "reading", "seq": 1, "metric": ["heart_rate"], "bpm": 80}',
            "validation_error",
            True,
        ),
        ('{"type": "reading", "seq": 1, "metric": {"a": 1}, "bpm": 80}', "validation_error", True),
        ('{"type": "reading", "seq": NaN, "metric": "heart_rate"}', "parse_error", False),
        ('{"type": "reading", "seq": Infinity}', "parse_error", False),
        ('{"type": "reading", "seq": 1e400}', "parse_error", False),
        ('{"type": "reading", "seq": [[[1]]], "metric": "heart_rate"}', "validation_error", True),
        ('{"type": "readings", "items": []}', "validation_error", False),
        (NESTED, "parse_error", False),
        ('{"type": "reading", "x": ' + NESTED + "}", "parse_error", False),
        (b"\xff\xfe not utf-8", "parse_error", False),
    ],
)
@pytest.mark.frames_malformed
async def test_bad_device_frames_get_a_parseable_error_and_the_connection_still_acks(
    device, payload, code, has_seq
):
    communicator = await device_connect(device.token)
    if isinstance(payload, bytes):
        await communicator.send_to(bytes_data=payload)
    else:
        await communicator.send_to(text_data=payload)
    raw = await communicator.receive_from(timeout=5)
    error = json.loads(raw, parse_constant=lambda name: pytest.fail(f"bare {name} in {raw!r}"))
    assert error["type"] == "error" and error["error"]["code"] == code, error
    assert ("seq" in error) is has_seq
    if has_seq:
        assert error["seq"] in (1, None)
    await _still_acks(communicator, 7)
    assert await _count(device) == 1
    await communicator.disconnect()


@pytest.mark.parametrize(
    "recorded_at",
    ["2026-12-01T17:00:00+23:00", "0001-01-01T00:00:00+14:00", "1970-01-01T00:00:00Z"],
)
async def test_readings_the_database_cannot_hold_are_refused_at_the_door(device, recorded_at):
    communicator = await device_connect(device.token)
    items = [reading(1), reading(2, recorded_at=recorded_at), reading(3)]
    await communicator.send_json_to({"type": "readings", "items": items})
    error = await receive_type(communicator, "error")
    assert error["seq"] == 2 and "recorded_at" in error["error"]["details"]
    assert (await receive_type(communicator, "ack"))["seqs"] == [1, 3]
    await communicator.disconnect()


@pytest.mark.frames_malformed
@pytest.mark.parametrize("payload", [NESTED, '{"type": "auth", "token": ' + NESTED + "}"])
async def test_dashboard_before_auth_gets_a_parse_error_not_1011(user_factory_nurse, payload):
    communicator = await dashboard_connect()
    await communicator.send_to(text_data=payload)
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["error"]["code"] == "parse_error"
    await communicator.send_json_to({"type": "auth", "token": "bad"})
    assert await expect_close(communicator) == 4401


@pytest.mark.frames_malformed
async def test_dashboard_after_auth_survives_bad_frames(nurse, ward):
    communicator = await dashboard_connect(nurse)
    for payload in (
        NESTED,
        '{"type": "subscribe", "ward": NaN}',
        '{"type": "subscribe", "ward": 99999999999999999999999}',
        '{"type": "subscribe", "ward": [1]}',
        '{"type": "alert.ack", "alert": 99999999999999999999999}',
        '{"type": "alert.ack", "alert": [[1]]}',
    ):
        await communicator.send_to(text_data=payload)
        raw = await communicator.receive_from(timeout=5)
        error = json.loads(raw, parse_constant=lambda name: pytest.fail(f"bare {name}"))
        assert error["type"] == "error", (payload[:60], error)
    await communicator.send_json_to({"type": "subscribe", "ward": ward.id})
    assert (await receive_type(communicator, "snapshot"))["ward"] == ward.id
    await communicator.disconnect()


@pytest.fixture
def user_factory_nurse(nurse):
    return nurse


# --- Storage failures ------------------------------------------------------------------------


async def test_storage_failure_is_told_to_the_device_naming_the_seqs(device, monkeypatch):
    def unreachable(**kwargs):
        raise OperationalError("the database is unreachable")

    communicator = await device_connect(device.token)
    monkeypatch.setattr(batcher, "readings_store_isolating", unreachable)
    await communicator.send_json_to({"type": "readings", "items": [reading(1), reading(2)]})
    error = await receive_type(communicator, "error")
    assert error["error"]["code"] == "storage_unavailable"
    assert error["seqs"] == [1, 2] and "seq" not in error
    assert await _count(device) == 0
    # Storage is back: the device resends on the same connection, and it is acked.
    monkeypatch.setattr(batcher, "readings_store_isolating", readings_store_isolating)
    await communicator.send_json_to({"type": "readings", "items": [reading(1), reading(2)]})
    assert (await receive_type(communicator, "ack"))["seqs"] == [1, 2]
    assert await _count(device) == 2
    await communicator.disconnect()


async def test_a_device_connecting_while_the_database_is_down_is_closed_4503(device, monkeypatch):
    def unreachable(token):
        raise OperationalError("the database is unreachable")

    monkeypatch.setattr(consumers, "device_by_token", unreachable)
    communicator = await device_connect(device.token)
    assert await expect_close(communicator) == 4503


def _unstorable_time() -> datetime:
    """A time this database refuses although Python holds it (what validation now keeps out):
    PostgreSQL refuses an offset beyond 15:59; SQLite's adapter cannot bring year 1 east of
    UTC to UTC."""
    if connection.vendor == "postgresql":
        return datetime.now(UTC).astimezone(timezone(timedelta(hours=23)))
    return datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))


def test_one_unstorable_row_costs_only_itself(ward):
    patients = [PatientFactory(ward=ward) for _ in range(2)]
    devices = [DeviceFactory(patient=p) for p in patients]
    now = datetime.now(UTC)
    readings = [
        ReadingInFactory(device=d, recorded_at=now, seq=seq)
        for seq in range(1, 11)
        for d in devices
    ]
    bad = ReadingInFactory(device=devices[1], recorded_at=_unstorable_time(), seq=99)
    readings.insert(7, bad)
    stored, refused = readings_store_isolating(readings=readings)
    assert refused == [bad]
    assert len(stored) == 20
    assert Reading.objects.count() == 20 and not Reading.objects.filter(seq=99).exists()


async def test_a_bad_row_in_a_flush_does_not_cost_other_devices_their_acks(ward):
    patients = [await sync_to_async(PatientFactory)(ward=ward) for _ in range(2)]
    devices = [await sync_to_async(DeviceFactory)(patient=p) for p in patients]
    now = datetime.now(UTC)
    good = [ReadingInFactory(device=devices[0], recorded_at=now, seq=s) for s in (1, 2)]
    bad = ReadingInFactory(device=devices[1], recorded_at=_unstorable_time(), seq=3)
    other = ReadingInFactory(device=devices[1], value=81, recorded_at=now, seq=4)
    ingest = batcher.batcher_get()
    first = ingest.submit(good, {patients[0].id: ward.id})
    second = ingest.submit([bad, other], {patients[1].id: ward.id})
    await ingest.drain()
    assert await first == []
    assert await second == [bad]
    stored = await sync_to_async(lambda: set(Reading.objects.values_list("seq", flat=True)))()
    assert stored == {1, 2, 4}


async def test_the_device_hears_which_reading_the_database_refused(device, monkeypatch):
    # A reading that passed validation but that the database refuses (validation keeps such
    # readings out; this stands for whatever it may miss): an error frame with its seq.
    real_parse = consumers.reading_parse

    def parse_letting_one_through(raw, **kwargs):
        parsed = real_parse({**raw, "recorded_at": reading(0)["recorded_at"]}, **kwargs)
        if raw["seq"] == 2:
            from dataclasses import replace

            return replace(parsed, recorded_at=_unstorable_time())
        return parsed

    monkeypatch.setattr(consumers, "reading_parse", parse_letting_one_through)
    communicator = await device_connect(device.token)
    await communicator.send_json_to({"type": "readings", "items": [reading(s) for s in (1, 2, 3)]})
    error = await receive_type(communicator, "error")
    assert error["seq"] == 2 and error["error"]["code"] == "not_storable"
    assert (await receive_type(communicator, "ack"))["seqs"] == [1, 3]
    await communicator.disconnect()
