"""The channel layer as a private backend of ``live.publish``: the groups that are not the
dashboards' (a device's, a user's: rare control events), and the Redis checks of the layer.

Synchronous senders go through a private event loop thread with its own channel-layer
instance per process, so nobody creates and closes event loops around the channel layer
(``async_to_sync(layer.group_send)`` in a Celery worker strands the layer's Redis connections
on dead loops: "Event loop is closed").
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from common import metrics
from common.redis_clients import redis_client_async
from monitoring.live.events import Events

logger = logging.getLogger(__name__)


async def groups_with_members(layer: Any, groups: Iterable[str]) -> set[str] | None:
    """Which of these groups have members, in one Redis round trip per shard (None: unknown).

    A ``group_send`` costs two round trips even to an empty group, and most patient groups
    (and wards nobody watches) are empty: checking them all at once first halves the Redis
    work of a flush. No reading is lost by skipping: a dashboard joins its group before it
    reads its snapshot, and the check runs after the readings were committed, so a reading
    is either in the snapshot or sent to the group.

    channels-redis has no public API for this; the one private name used
    (``_group_key``, with ``consistent_hash`` and ``connection``) is isolated here and
    covered by a test that fails on an upgrade that changes it.
    """
    if not isinstance(layer, RedisChannelLayer):
        return None
    by_shard: dict[int, list[str]] = {}
    for group in groups:
        by_shard.setdefault(layer.consistent_hash(group), []).append(group)
    found: set[str] = set()
    for shard, names in by_shard.items():
        pipe = layer.connection(shard).pipeline(transaction=False)
        for group in names:
            pipe.zcard(layer._group_key(group))
        counts = await pipe.execute()
        found.update(group for group, count in zip(names, counts, strict=True) if count)
    return found


async def channel_layer_ping(layer: Any) -> None:
    """Raise unless every Redis host of the channel layer answers (through the layer's own
    connections, so a success means the layer itself works again); the in-memory layer
    always answers."""
    if isinstance(layer, RedisChannelLayer):
        async with asyncio.timeout(settings.LIVE_CALL_TIMEOUT):
            for index in range(layer.ring_size):
                await layer.connection(index).ping()
    elif not isinstance(layer, InMemoryChannelLayer):
        client = redis_client_async(timeout=settings.LIVE_CALL_TIMEOUT)
        try:
            await client.ping()  # type: ignore[misc]  # typed for the sync client too
        finally:
            await client.aclose()


async def layer_send(events: Events, *, layer: Any = None, raise_errors: bool = False) -> int:
    """Send group messages from async code, concurrently, skipping groups without members;
    returns how many sends failed.

    A failure is logged (or raised with ``raise_errors``): a lost control event is repaired by
    the connections' own re-checks."""
    if not events:
        return 0
    layer = layer or get_channel_layer()
    failed = 0
    try:
        members = await groups_with_members(layer, {group for group, _ in events})
    except Exception:
        if raise_errors:
            raise
        logger.exception("group membership check failed; sending to every group")
        members = None
        failed += 1
    if members is not None:
        events = [(group, event) for group, event in events if group in members]
        if not events:
            return failed
    results = await asyncio.gather(
        *(layer.group_send(group, event) for group, event in events), return_exceptions=True
    )
    for (group, _), result in zip(events, results, strict=True):
        if isinstance(result, BaseException):
            metrics.CHANNEL_LAYER_SEND_FAILURES.inc()  # metrics
            if raise_errors:
                raise result if isinstance(result, Exception) else RuntimeError(group)
            logger.error("group_send to %s failed: %r", group, result)
            failed += 1
    return failed


class _SyncPublisher:
    """A private event loop in a daemon thread with its own channel-layer instance."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.layer = channel_layers.make_backend("default")
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="channel-layer-publisher", daemon=True
        )
        self.thread.start()

    def send(self, events: Events, timeout: float) -> None:
        coroutine = layer_send(events, layer=self.layer, raise_errors=True)
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


_publisher: _SyncPublisher | None = None
_publisher_lock = threading.Lock()


def layer_send_sync(events: Events, *, timeout: float = 5.0) -> None:
    """Send from synchronous code: safe from any thread and any number of times, from Django
    views, Celery tasks (prefork: one sender per process, made after the fork) and management
    commands. Raises what the send raised."""
    global _publisher
    if not events:
        return
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        # The in-memory layer lives in one process and one loop (tests, --memory runs).
        async_to_sync(layer_send)(list(events), raise_errors=True)
        return
    with _publisher_lock:
        if _publisher is None or _publisher.pid != os.getpid():
            _publisher = _SyncPublisher()
        publisher = _publisher
    publisher.send(list(events), timeout)


# --- metrics: channel-layer capacity drops --------------------------------------------------

# channels-redis reports a group_send that found connections over capacity only in a log line
# (INFO, logger ``channels_redis.core``, "N of M channels over capacity in group G"); this
# filter counts those lines. A test sends to a full channel and fails if an upgrade changes
# the logger or the message.
OVER_CAPACITY_LOGGER = "channels_redis.core"


class _OverCapacityCounter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if "over capacity" in str(record.msg):
            metrics.CHANNEL_LAYER_OVER_CAPACITY.inc()
        return True


def over_capacity_counting_install() -> None:
    """Count the channel layer's capacity drops (called once, from the app's ``ready``)."""
    target = logging.getLogger(OVER_CAPACITY_LOGGER)
    if not any(isinstance(f, _OverCapacityCounter) for f in target.filters):
        target.addFilter(_OverCapacityCounter())
