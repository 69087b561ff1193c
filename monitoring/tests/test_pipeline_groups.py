"""Group sends skip groups without members (one Redis round trip for the check)."""

from __future__ import annotations

import uuid

from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer

from monitoring.realtime import publish


async def test_membership_check_finds_only_groups_with_members():
    layer: RedisChannelLayer = channel_layers.make_backend("default")
    tag = uuid.uuid4().hex[:8]
    watched, empty = f"ward.t{tag}", f"patient.t{tag}"
    channel = await layer.new_channel()
    await layer.group_add(watched, channel)
    try:
        assert await publish.groups_with_members(layer, [watched, empty]) == {watched}
    finally:
        await layer.group_discard(watched, channel)
        await layer.close_pools()
    assert await publish.groups_with_members(layer, [watched, empty]) == set()


async def test_groups_send_delivers_to_members_and_skips_empty_groups():
    # A private layer instance receives, so the shared one keeps no receive state bound to
    # this test's event loop.
    layer: RedisChannelLayer = channel_layers.make_backend("default")
    tag = uuid.uuid4().hex[:8]
    watched, empty = f"ward.t{tag}", f"patient.t{tag}"
    channel = await layer.new_channel()
    await layer.group_add(watched, channel)
    try:
        await publish.groups_send(
            [
                (watched, {"type": "reading.batch", "group": watched, "items": [1]}),
                (empty, {"type": "reading.batch", "group": empty, "items": [2]}),
            ]
        )
        message = await layer.receive(channel)
        assert message["group"] == watched
        assert message["items"] == [1]
    finally:
        await layer.group_discard(watched, channel)
        await layer.close_pools()
