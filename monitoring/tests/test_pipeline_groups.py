"""Channel-layer group sends skip groups without members (one Redis round trip for the check).
The channel layer carries the control events (a device's, a user's groups); the dashboards'
ward and patient groups go through the live hub (test_live_hub.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer

from monitoring.live import layer as layer_backend
from monitoring.live.publish import live_publish


@dataclass
class Groups:
    layer: RedisChannelLayer
    channel: str
    watched: str  # the channel is its member
    empty: str  # nobody is


@pytest.fixture
async def groups() -> AsyncIterator[Groups]:
    # A private layer instance receives, so the shared one keeps no receive state bound to
    # this test's event loop.
    layer: RedisChannelLayer = channel_layers.make_backend("default")
    tag = uuid.uuid4().hex[:8]
    channel = await layer.new_channel()
    made = Groups(layer, channel, watched=f"device.t{tag}", empty=f"user.t{tag}")
    await layer.group_add(made.watched, channel)
    yield made
    await layer.group_discard(made.watched, channel)
    await layer.close_pools()


async def test_membership_check_finds_only_groups_with_members(groups):
    layer, names = groups.layer, [groups.watched, groups.empty]
    assert await layer_backend.groups_with_members(layer, names) == {groups.watched}
    await layer.group_discard(groups.watched, groups.channel)
    assert await layer_backend.groups_with_members(layer, names) == set()


async def test_live_publish_delivers_to_members_and_skips_empty_groups(groups):
    watched, empty = groups.watched, groups.empty
    await live_publish(
        [
            (watched, {"type": "device.changed", "group": watched, "items": [1]}),
            (empty, {"type": "device.changed", "group": empty, "items": [2]}),
        ]
    )
    message = await groups.layer.receive(groups.channel)
    assert message["group"] == watched
    assert message["items"] == [1]


@pytest.mark.django_db(transaction=True)
def test_live_publish_on_commit_waits_for_the_commit_and_drops_a_rollback():
    from django.db import transaction

    from monitoring.live.groups import ward_group
    from testing.live_events import live_events

    group = ward_group(10**9)
    with live_events(group) as live:
        with pytest.raises(RuntimeError), transaction.atomic():
            live_publish([(group, {"type": "probe", "n": 1})], on_commit=True)
            raise RuntimeError("rolled back")
        with transaction.atomic():
            live_publish([(group, {"type": "probe", "n": 2})], on_commit=True)
            with pytest.raises(TimeoutError):
                live.next(wait=0.2)  # not before the commit
        assert live.next() == (group, {"type": "probe", "n": 2})  # and never n=1


async def test_live_publish_not_awaited_still_runs_on_the_loop(monkeypatch):
    """An async caller that does not await the door (fire and forget) is published on the
    loop's next turn."""
    from monitoring.live import publish

    sent: list = []

    async def hub_publish(events):
        sent.extend(events)

    monkeypatch.setattr(publish, "hub_publish", hub_publish)
    live_publish([("ward.1", {"type": "probe"})])
    assert sent == []
    for _ in range(3):
        await asyncio.sleep(0)
    assert sent == [("ward.1", {"type": "probe"})]
