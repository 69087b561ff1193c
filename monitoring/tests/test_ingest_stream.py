"""Both ingest paths queue every new reading for alarm evaluation in the transaction that
stores it: the readings stream holds exactly what was stored, and when the stream cannot take
them nothing is stored (the device resends, the REST caller hears 503)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from asgiref.sync import sync_to_async
from redis.exceptions import ConnectionError as RedisConnectionError

from monitoring.ingest import reading_parse
from monitoring.models import Reading
from monitoring.realtime import batcher, stream
from monitoring.services import readings_ingest
from testing.assertions import assert_error
from testing.clients import device_client
from testing.factories import ingest_target
from testing.ws import device_connect, reading, receive_type

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def queued(patient_id: int) -> list[tuple[int | None, int]]:
    """``(seq, reading id)`` of every entry of the patient's partition, oldest first."""
    client = stream.redis_client()
    entries = cast(
        "list[Any]", client.xrange(stream.partition_key(stream.partition_of(patient_id)))
    )
    readings = [stream.reading_decode(fields) for _, fields in entries]
    return [(r.seq, r.id) for r in readings if r.patient_id == patient_id]


def _broken_append(**_):
    raise RedisConnectionError("Redis is down")


async def test_websocket_readings_are_queued_once_when_stored(device):
    ws = await device_connect(device.token)
    await ws.send_json_to({"type": "readings", "items": [reading(1), reading(2)]})
    await receive_type(ws, "ack")
    ids = await sync_to_async(
        lambda: list(Reading.objects.order_by("seq").values_list("id", flat=True))
    )()
    assert await sync_to_async(queued)(device.patient_id) == [(1, ids[0]), (2, ids[1])]
    # A duplicate is acked again but is not new: it is not queued a second time.
    await ws.send_json_to({"type": "reading", **reading(2)})
    await receive_type(ws, "ack")
    assert len(await sync_to_async(queued)(device.patient_id)) == 2
    await ws.disconnect()


async def test_a_stream_outage_stores_nothing_acks_nothing_and_asks_to_resend(device, monkeypatch):
    monkeypatch.setattr(batcher, "readings_stream_append", _broken_append)
    ws = await device_connect(device.token)
    await ws.send_json_to({"type": "reading", **reading(1)})
    error = await receive_type(ws, "error")
    assert error["error"]["code"] == "storage_unavailable" and error["seqs"] == [1]
    assert await sync_to_async(Reading.objects.count)() == 0
    await ws.disconnect()


def test_rest_readings_are_queued_in_the_storing_transaction(device):
    stored = readings_ingest(
        readings=[
            reading_parse(reading(s), target=ingest_target(device), require_seq=True)
            for s in (1, 2)
        ]
    )
    assert queued(device.patient_id) == [(r.seq, r.id) for r in stored]


def test_rest_stream_outage_is_a_503_and_stores_nothing(device, monkeypatch):
    from monitoring import services

    monkeypatch.setattr(services, "readings_stream_append", _broken_append)
    response = device_client(device.token).post("/api/records/", reading(1), format="json")
    assert_error(response, 503, "unavailable")
    assert Reading.objects.count() == 0
    assert queued(device.patient_id) == []
