"""A Redis outage degrades the live feed instead of stopping ingest: the helpers of
``live.feed`` one by one, then the consumers against a Redis of the test's own that it
stops and starts again (real channel layer, cache and readings stream)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any, cast

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from config.net import free_port
from monitoring.ingest.presence import devices_online
from monitoring.live import feed as outage
from monitoring.live.feed import LiveFeed, groups_join, live_feed, receive_resilient
from monitoring.models import Reading, StreamBacklog
from monitoring.stream import entries as stream
from monitoring.stream.backlog import stream_backlog_replay_due
from testing.factories import DeviceFactory, PatientFactory
from testing.live import until
from testing.redis_outage import settings_point_at
from testing.ws import dashboard_connect, device_connect, reading, receive_type, subscribe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


class Listener:
    def __init__(self) -> None:
        self.heard: list[str] = []

    async def live_degraded(self, feed: LiveFeed) -> None:
        self.heard.append("degraded")

    async def live_restored(self, feed: LiveFeed) -> None:
        self.heard.append("restored")


# --- The helpers ----------------------------------------------------------------------------


async def test_the_feed_tells_its_listeners_once_and_again_when_the_probe_answers():
    redis_back = asyncio.Event()

    async def probe() -> None:
        if not redis_back.is_set():
            raise RedisConnectionError("still away")

    feed = LiveFeed(asyncio.get_running_loop(), probe=probe, probe_seconds=0.01)
    listener = Listener()
    feed.listen(listener)
    feed.report("group_add", RedisConnectionError("gone"))
    feed.report("receive", RedisConnectionError("gone"))  # the same outage: told once
    await until(lambda: listener.heard == ["degraded"], 10, "degraded")
    assert feed.degraded and feed.frame()["type"] == "live.degraded"
    assert feed.frame()["reason"] == "redis_unavailable"
    await asyncio.sleep(0.05)  # probes fail meanwhile
    assert feed.degraded
    redis_back.set()
    await until(lambda: listener.heard == ["degraded", "restored"], 10, "restored")
    assert not feed.degraded and feed.outages == 1
    feed.close()


async def test_a_channel_receive_that_fails_is_retried_and_the_outage_reported():
    failures = [RedisConnectionError("gone"), RedisConnectionError("gone")]

    async def receive() -> dict[str, Any]:
        if failures:
            raise failures.pop()
        return {"type": "reading.batch", "items": []}

    assert await receive_resilient(receive)() == {"type": "reading.batch", "items": []}
    assert live_feed().degraded
    live_feed().close()


async def test_a_cancelled_receive_ends_even_when_the_client_turns_it_into_an_error():
    # The consumer's end cancels its receive and waits for it (channels' await_many_dispatch):
    # a Redis client that answers the cancellation with a connection error must not make the
    # wrapper wait for Redis for ever.
    started = asyncio.Event()

    async def receive() -> dict[str, Any]:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None
        raise AssertionError("not reached")

    task = asyncio.ensure_future(receive_resilient(receive)())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert not live_feed().degraded


async def test_groups_that_cannot_be_joined_are_returned_not_raised(settings):
    settings_point_at(settings, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    layer = get_channel_layer()
    assert layer is not None
    missed = await groups_join(layer, await layer.new_channel(), ["ward.1", "user.2"])
    assert missed == {"ward.1", "user.2"}
    assert live_feed().degraded
    live_feed().close()


def test_devices_count_as_online_by_last_seen_while_presence_is_unreadable(settings):
    settings_point_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    now = timezone.now()
    last_seen = {1: now - timedelta(seconds=2), 2: now - timedelta(minutes=5), 3: None}
    assert devices_online([1, 2, 3], last_seen=last_seen) == {1}


# --- The consumers through a real outage ----------------------------------------------------


def _queued_seqs(patient_id: int) -> list[int | None]:
    client = stream.redis_client()
    key = stream.partition_key(stream.partition_of(patient_id))
    entries = cast("list[Any]", client.xrange(key))
    return [
        r.seq for _, f in entries for r in stream.entry_readings(f) if r.patient_id == patient_id
    ]


async def test_devices_stream_through_a_redis_outage_and_dashboards_resynchronise(
    settings, stoppable_redis, device, nurse, ward
):
    settings_point_at(settings, stoppable_redis.url)
    dashboard = await dashboard_connect(nurse)
    assert (await subscribe(dashboard, ward=ward.id))["type"] == "snapshot"
    ws = await device_connect(device.token)
    await ws.send_json_to({"type": "reading", **reading(1)})
    assert await receive_type(ws, "ack") == {"type": "ack", "seqs": [1]}
    assert (await receive_type(dashboard, "readings"))["items"][0]["seq"] == 1

    stoppable_redis.stop()
    # The device is not told anything new: its readings are stored and acked.
    await ws.send_json_to({"type": "reading", **reading(2)})
    assert await receive_type(ws, "ack") == {"type": "ack", "seqs": [2]}
    degraded = await receive_type(dashboard, "live.degraded")
    assert degraded["reason"] == "redis_unavailable" and degraded["since"]
    # A device that connects now streams too (group_add fails, the connection stays).
    other = await sync_to_async(DeviceFactory)(
        patient=await sync_to_async(PatientFactory)(ward=ward)
    )
    late = await device_connect(other.token)
    await late.send_json_to({"type": "reading", **reading(1)})
    assert await receive_type(late, "ack") == {"type": "ack", "seqs": [1]}
    # A dashboard that connects now is told at once, and its snapshot comes from PostgreSQL.
    watcher = await dashboard_connect(nurse)
    assert (await receive_type(watcher, "live.degraded"))["reason"] == "redis_unavailable"
    snapshot = await subscribe(watcher, ward=ward.id)
    assert snapshot["type"] == "snapshot"
    mine = next(p for p in snapshot["patients"] if p["id"] == device.patient_id)
    assert mine["latest"]["heart_rate"]["seq"] == 2
    assert mine["device"]["online"] is True  # seen within the presence lifetime
    assert await sync_to_async(Reading.objects.count)() == 3
    assert await sync_to_async(StreamBacklog.objects.count)() == 2  # not in the stream yet

    stoppable_redis.start()  # back, empty
    for client in (dashboard, watcher):
        await receive_type(client, "live.restored", wait=15)
        resync = await receive_type(client, "snapshot")
        assert resync["ward"] == ward.id
    # The replayer's pass (its thread's, here the test's) appends the deferred readings; the
    # next flush finds the backlog empty and appends again: before anything newer.
    assert await sync_to_async(stream_backlog_replay_due)() == 2
    await ws.send_json_to({"type": "reading", **reading(3)})
    assert await receive_type(ws, "ack") == {"type": "ack", "seqs": [3]}
    assert await sync_to_async(_queued_seqs)(device.patient_id) == [2, 3]
    assert await sync_to_async(StreamBacklog.objects.count)() == 0
    # The live feed is back: both dashboards hear the new reading (groups joined again).
    for client in (dashboard, watcher):
        frame = await receive_type(client, "readings", wait=10)
        assert [item["seq"] for item in frame["items"]] == [3]
    for client in (ws, late, dashboard, watcher):
        await client.disconnect()
    assert outage.live_feed().outages == 1


async def test_a_redis_that_does_not_answer_delays_a_device_by_seconds_not_for_ever(
    settings, silent_redis, device
):
    # Connections are accepted and nothing is answered (a hung Redis, a black-holed host):
    # every Redis call of the connect and of the flush times out, and the device streams.
    settings_point_at(settings, silent_redis)
    started = time.monotonic()
    ws = await device_connect(device.token)
    await ws.send_json_to({"type": "reading", **reading(1)})
    assert await receive_type(ws, "ack", wait=20) == {"type": "ack", "seqs": [1]}
    assert time.monotonic() - started < 15
    await ws.send_json_to({"type": "reading", **reading(2)})
    assert await receive_type(ws, "ack", wait=5) == {"type": "ack", "seqs": [2]}
    assert await sync_to_async(Reading.objects.count)() == 2
    assert await sync_to_async(StreamBacklog.objects.count)() == 2
    assert live_feed().degraded
    await ws.disconnect(timeout=20)


def test_a_feed_left_degraded_on_a_closed_loop_is_dropped_quietly():
    # A test (or a server's loop) that ends mid-outage leaves a probe pending on its loop;
    # the next loop's feed replaces it without touching the closed loop.
    loop = asyncio.new_event_loop()
    feed = LiveFeed(loop, probe_seconds=3600)
    feed.report("receive", RedisConnectionError("gone"))
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    feed.close()  # no "Event loop is closed"
    assert feed.degraded
