"""The ingest metrics move with real traffic: readings over the device WebSocket, over REST and
through the HL7 path of the shared ingest service; connections; the channel layer."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from django.conf import settings as django_settings
from django.db import OperationalError
from django.utils import timezone

from config.net import free_port
from monitoring.live.layer import layer_send
from monitoring.readings import Target, reading_parse
from monitoring.services import readings_ingest
from testing.clients import device_client
from testing.metrics import metric_value
from testing.ws import dashboard_connect, device_connect, reading, receive_type

FLUSHES = "monitor_ingest_flush_seconds_count"


def _counts(path: str) -> dict[str, float]:
    return {
        "ingested": metric_value("monitor_readings_ingested_total", path=path),
        "duplicate": metric_value("monitor_readings_duplicate_total", path=path),
        "rejected": metric_value("monitor_readings_rejected_total", code="validation_error"),
        "flushes": metric_value(FLUSHES),
        "flushed_readings": metric_value("monitor_ingest_flush_readings_sum"),
        "failures": metric_value("monitor_ingest_flush_failures_total", path=path),
    }


def _moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in before}


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_websocket_readings_move_the_ws_counter_once_per_flush(device):
    before = _counts("ws")
    acks_before = metric_value("monitor_ingest_ack_seconds_count")
    connections_before = metric_value("monitor_ws_connections", kind="device")
    communicator = await device_connect(device.token)

    items = [reading(1), reading(2), reading(3), reading(4, bpm=999)]  # the last is refused
    await communicator.send_json_to({"type": "readings", "items": items})
    error = await receive_type(communicator, "error")
    assert error["seq"] == 4
    assert await receive_type(communicator, "ack") == {"type": "ack", "seqs": [1, 2, 3]}
    # (The connection is counted once the device is known, after the accept.)
    assert metric_value("monitor_ws_connections", kind="device") == connections_before + 1
    moved = _moved(before, _counts("ws"))
    assert moved["ingested"] == 3
    assert moved["rejected"] == 1
    assert moved["duplicate"] == 0
    assert moved["flushes"] == 1  # one observation for the batch, not one per reading
    assert moved["flushed_readings"] == 3
    assert metric_value("monitor_ingest_ack_seconds_count") == acks_before + 1

    # A resend is acked again and counted as a duplicate, not as ingested.
    await communicator.send_json_to({"type": "readings", "items": items[:3]})
    await receive_type(communicator, "ack")
    moved = _moved(before, _counts("ws"))
    assert (moved["ingested"], moved["duplicate"]) == (3, 3)

    await communicator.disconnect()
    assert metric_value("monitor_ws_connections", kind="device") == connections_before


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_dashboard_connections_are_counted_while_open(nurse):
    before = metric_value("monitor_ws_connections", kind="dashboard")
    first = await dashboard_connect(nurse)
    second = await dashboard_connect()  # counted before it authenticates too
    assert metric_value("monitor_ws_connections", kind="dashboard") == before + 2
    await first.disconnect()
    await second.disconnect()
    assert metric_value("monitor_ws_connections", kind="dashboard") == before


def _now_reading(seq: int | None, **extra) -> dict:
    return {
        "metric": "heart_rate",
        "bpm": 80,
        "recorded_at": timezone.now().isoformat(),
        **extra,
    } | ({} if seq is None else {"seq": seq})


@pytest.mark.django_db
def test_rest_readings_move_the_rest_counter(device):
    client = device_client(device.token)
    before = _counts("rest")
    response = client.post(
        "/api/records/", [_now_reading(1), _now_reading(2), _now_reading(3, bpm=5)], format="json"
    )
    assert response.status_code == 201, response.content
    moved = _moved(before, _counts("rest"))
    assert (moved["ingested"], moved["rejected"], moved["flushes"]) == (2, 1, 1)

    client.post("/api/records/", [_now_reading(2), _now_reading(4)], format="json")
    moved = _moved(before, _counts("rest"))
    assert (moved["ingested"], moved["duplicate"], moved["flushes"]) == (3, 1, 2)


@pytest.mark.django_db
def test_the_hl7_path_is_counted_under_its_own_label(device):
    """The HL7 listener stores through the same service and names its path."""
    target = Target(
        patient_id=device.patient_id,
        place_id=device.place_id,
        ward_id=device.patient.ward_id,
        profile="adult",
        device_id=device.id,
    )
    readings = [reading_parse(_now_reading(s), target=target, require_seq=True) for s in (1, 2)]
    hl7, rest = _counts("hl7"), _counts("rest")
    assert len(readings_ingest(readings=readings, path="hl7")) == 2
    assert _moved(hl7, _counts("hl7"))["ingested"] == 2
    assert _moved(rest, _counts("rest"))["ingested"] == 0


@pytest.mark.django_db
def test_a_batch_that_cannot_be_stored_counts_a_flush_failure(device, monkeypatch):
    from monitoring import readings as ingest

    def unreachable(**_: object) -> None:
        raise OperationalError("the database is unreachable")

    monkeypatch.setattr(ingest, "_readings_store", unreachable)
    before = _counts("rest")
    client = device_client(device.token)
    client.raise_request_exception = False  # answered in the error shape (503), as served
    response = client.post("/api/records/", _now_reading(1), format="json")
    assert response.status_code == 503
    moved = _moved(before, _counts("rest"))
    assert (moved["failures"], moved["ingested"], moved["flushes"]) == (1, 0, 0)


async def test_group_messages_the_layer_does_not_take_are_counted():
    dead = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}/0"])
    before = metric_value("monitor_channel_layer_send_failures_total")
    # Channel-layer groups (a ward's events go through the live hub instead).
    await layer_send([("device.1", {"type": "x"}), ("device.2", {"type": "x"})], layer=dead)
    assert metric_value("monitor_channel_layer_send_failures_total") == before + 2


async def test_messages_dropped_for_a_full_connection_are_counted():
    """channels-redis says so only in a log line; this fails if an upgrade changes it."""
    layer = RedisChannelLayer(hosts=[django_settings.REDIS_URL], capacity=1)
    channel = await layer.new_channel()
    await layer.group_add("metrics-capacity", channel)
    before = metric_value("monitor_channel_layer_over_capacity_total")
    await layer.group_send("metrics-capacity", {"type": "a"})  # fills the channel
    await layer.group_send("metrics-capacity", {"type": "b"})  # dropped
    assert metric_value("monitor_channel_layer_over_capacity_total") == before + 1
    await layer.flush()
    channel_layers.backends.clear()
    await asyncio.sleep(0)
