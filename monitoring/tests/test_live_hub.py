"""The process-local live fan-out (``live.hub``) against a real Redis that the test starts
and stops itself: delivery between processes (hubs), its own events not twice, and what the
members hear when the pub/sub link is lost and comes back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from config import embedded_redis
from config.net import free_port
from monitoring.live.events import LiveEvent
from monitoring.live.hub import LiveHub, _pack, live_channel

pytestmark = pytest.mark.timeout(60)


class Member:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.states: list[str] = []
        self.changed = asyncio.Event()

    async def live_event(self, event: LiveEvent) -> None:
        self.events.append(event.data)
        self.changed.set()

    async def until(self, predicate: Any, wait: float = 15) -> None:
        async with asyncio.timeout(wait):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of this test alone, on a port it keeps across a restart."""
    port = free_port()
    started = {"process": embedded_redis.start(port, tmp_path)[0]}

    class Server:
        url = f"redis://127.0.0.1:{port}/0"

        def stop(self) -> None:
            started["process"].kill()
            started["process"].wait()

        def start(self) -> None:
            started["process"] = embedded_redis.start(port, tmp_path)[0]

    yield Server()
    started["process"].kill()
    started["process"].wait()


async def test_events_reach_the_members_of_other_hubs_once(private_redis):
    loop = asyncio.get_running_loop()
    here, there = LiveHub(loop, private_redis.url), LiveHub(loop, private_redis.url)
    local, remote, elsewhere = Member(), Member(), Member()
    try:
        await here.join("ward.1", local)
        await there.join("ward.1", remote)  # returns once the subscription is confirmed
        await there.join("ward.2", elsewhere)
        await here.publish([("ward.1", {"type": "probe", "n": 1})])
        # The publisher's own members have it before publish returns, without Redis.
        assert local.events == [{"type": "probe", "n": 1}]
        await remote.until(lambda: remote.events)
        assert remote.events == [{"type": "probe", "n": 1}]
        # The publisher's own event coming back from Redis is not delivered twice, and a
        # ward nobody here watches costs no delivery.
        await there.publish([("ward.1", {"type": "probe", "n": 2})])
        await local.until(lambda: len(local.events) == 2)
        await here.publish([("ward.1", {"type": "probe", "n": 3})])
        await remote.until(lambda: len(remote.events) == 3)
        assert [e["n"] for e in local.events] == [1, 2, 3]
        assert [e["n"] for e in remote.events] == [1, 2, 3]
        assert elsewhere.events == []
    finally:
        await here.aclose()
        await there.aclose()


async def test_a_member_that_left_hears_nothing_more(private_redis):
    loop = asyncio.get_running_loop()
    hub, publisher = LiveHub(loop, private_redis.url), LiveHub(loop, private_redis.url)
    gone, staying = Member(), Member()
    try:
        await hub.join("ward.1", gone)
        await hub.join("ward.1", staying)
        hub.leave("ward.1", gone)
        await publisher.publish([("ward.1", {"type": "probe", "n": 1})])
        await staying.until(lambda: staying.events)
        assert gone.events == []
    finally:
        await hub.aclose()
        await publisher.aclose()


@pytest.fixture
def link_losses(monkeypatch):
    """What the hubs report to the live feed when their link is lost."""
    from monitoring.live import hub as hub_module

    lost: list[BaseException] = []
    monkeypatch.setattr(hub_module, "_link_lost_handlers", [lambda loop, exc: lost.append(exc)])
    return lost


async def until(predicate: Any, wait: float = 15) -> None:
    """Poll state another task owns (the hub's link), with a deadline."""
    async with asyncio.timeout(wait):
        while not predicate():  # noqa: ASYNC110  (no event to wait on: the hub's own state)
            await asyncio.sleep(0.05)


async def test_a_lost_link_is_reported_and_its_return_subscribes_again(private_redis, link_losses):
    hub = LiveHub(asyncio.get_running_loop(), private_redis.url)
    member = Member()
    try:
        await hub.join("ward.7", member)
        assert hub.state == "live" and hub.link_ok()
        private_redis.stop()
        await until(lambda: link_losses)
        assert hub.state == "lost" and not hub.link_ok()
        # While the link is down this process's own events still reach its members.
        await hub.publish([("ward.7", {"type": "probe", "n": 1})])
        assert member.events == [{"type": "probe", "n": 1}]
        private_redis.start()
        await until(hub.link_ok)
        assert len(link_losses) == 1  # reported once per outage
        # Subscribed again: what another process publishes arrives.
        client = aioredis.Redis.from_url(private_redis.url)
        try:
            await client.publish(live_channel("ward.7"), _pack("other", {"type": "probe", "n": 2}))
        finally:
            await client.aclose()
        await member.until(lambda: len(member.events) == 2)
        assert member.events[-1] == {"type": "probe", "n": 2}
    finally:
        await hub.aclose()


async def test_joining_while_redis_is_down_does_not_wait_and_recovers(private_redis, link_losses):
    private_redis.stop()
    hub = LiveHub(asyncio.get_running_loop(), private_redis.url)
    member = Member()
    try:
        async with asyncio.timeout(10):
            await hub.join("ward.3", member)
        await until(lambda: link_losses)
        private_redis.start()
        await until(hub.link_ok)
    finally:
        await hub.aclose()


@pytest.mark.django_db(transaction=True)
async def test_a_dashboard_is_told_of_a_lost_live_link_and_resynchronised_when_it_returns(
    private_redis, settings, nurse, ward
):
    from monitoring.live.hub import hub_get
    from testing.ws import dashboard_connect, receive_type, subscribe

    settings.REDIS_URL = private_redis.url  # the live link of this test's process
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    private_redis.stop()
    degraded = await receive_type(watcher, "live.degraded", wait=15)
    assert degraded["reason"] == "redis_unavailable"
    private_redis.start()
    # Restored only once this process's hub is subscribed again, then resynchronised.
    await receive_type(watcher, "live.restored", wait=15)
    assert hub_get().link_ok()
    resync = await receive_type(watcher, "snapshot")
    assert resync["ward"] == ward.id
    await watcher.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_without_redis_the_hubs_of_one_process_deliver_to_each_other(settings, nurse, ward):
    """CHANNEL_LAYER=memory (one process, no Redis): a synchronous publisher, from another
    thread, reaches the dashboards of this process."""
    from asgiref.sync import sync_to_async

    from monitoring.live.groups import ward_group
    from monitoring.live.publish import live_publish
    from testing.ws import dashboard_connect, receive_type, subscribe

    settings.CHANNEL_LAYER_BACKEND = "memory"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    event = {"type": "device.status", "device": 1, "ward": ward.id, "patient": 0, "online": True}
    await sync_to_async(live_publish, thread_sensitive=False)(
        [(ward_group(ward.id), event)], raise_errors=True
    )
    assert (await receive_type(watcher, "device.status"))["online"] is True
    await watcher.disconnect()
