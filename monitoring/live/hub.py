"""Process-local fan-out of the live dashboard events (readings, device status, alerts, audio).

A ward is watched by a few dashboards and streams many readings. Sending one channel-layer
message per dashboard per flush costs channels-redis several Redis round trips per message,
and a server process receives its channel-layer messages one at a time: at 1,000 readings/s
the dashboards fell seconds behind the acks. Instead each server process keeps its
dashboards' interest itself, in one :class:`LiveHub` per event loop:

- a dashboard connection *joins* the hub's local group of each ward (or ward-less patient) it
  watches (``events.scope_group``);
- a publisher hands the hub a flush's events: the hub delivers each one to its own members at
  once (a method call per member, no Redis on the way) and sends ONE Redis ``PUBLISH`` per
  group, all of a flush in one pipelined round trip, on the channel ``{prefix}live:{group}``,
  tagged with its origin;
- each hub subscribes, on one pub/sub connection, to the channels of the groups it has local
  members for, and hands what other processes publish to those members; its own messages
  coming back are dropped by their origin.

Redis traffic is so per ward and per process, not per viewer. Publishers without a hub
(REST views, Celery tasks, the alarm evaluator) publish with :func:`hub_publish_sync`. Both are
private to ``live``: everyone publishes through ``live.publish.live_publish``.

Neither pub/sub nor the channel layer before it keeps messages: a dashboard resynchronises
from the database (its snapshot) on reconnect. When the hub's pub/sub link is lost it reports
it to the live feed of its loop (``live.feed``: dashboards are told the feed is
degraded) and still delivers everything published in this process; the feed counts Redis as
back only once the hub is subscribed again (:meth:`LiveHub.link_ok`), and then the dashboards
resynchronise. A member joining a group waits until the subscription is confirmed, so a
reading committed after the member reads its snapshot always reaches it.

With the in-memory channel layer (``CHANNEL_LAYER=memory``, one process) there is no Redis:
the hubs of this process deliver to each other directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
from django.conf import settings

from common import metrics
from common.loops import PerLoop
from common.redis_clients import redis_client, redis_client_async
from monitoring.live.events import Events, LiveEvent

logger = logging.getLogger(__name__)

OUTBOX_LIMIT = 10_000  # messages waiting for Redis; beyond, the oldest are dropped (counted)


class LiveMember(Protocol):
    """What a hub delivers to (a dashboard connection)."""

    async def live_event(self, event: LiveEvent) -> None: ...


LinkLostHandler = Callable[[asyncio.AbstractEventLoop, BaseException], None]
_link_lost_handlers: list[LinkLostHandler] = []


def hub_link_lost_handle(handler: LinkLostHandler) -> None:
    """Call ``handler(loop, error)`` when a hub loses its pub/sub link (the live feed of
    ``live.feed`` registers itself here: it imports this module, not the reverse)."""
    if handler not in _link_lost_handlers:
        _link_lost_handlers.append(handler)


def _redis_url() -> str | None:
    """Redis of the live fan-out, or None with the in-memory channel layer (one process)."""
    if settings.CHANNEL_LAYER_BACKEND == "memory":
        return None
    return str(settings.REDIS_URL)


def live_channel(group: str) -> str:
    # Pub/sub channels are global to a Redis server (not per database): the prefix keeps two
    # deployments, or two test runs, on one server apart.
    return f"{settings.LIVE_CHANNEL_PREFIX}live:{group}"


def _pack(origin: str, event: dict[str, Any]) -> str:
    return _packed(origin, json.dumps(event, separators=(",", ":")))


def _packed(origin: str, event_text: str) -> str:
    """``[origin, event]`` as JSON, the event already encoded (an origin is letters, digits
    and "-")."""
    return f'["{origin}",{event_text}]'


def _unpack(data: bytes | str) -> tuple[str, dict[str, Any]]:
    origin, event = json.loads(data)
    return origin, event


def _is_from(origin: str, data: bytes | str) -> bool:
    """Whether ``origin`` published this message, read from its head: a hub's own messages
    come back from Redis and are dropped without decoding the event."""
    head = f'["{origin}",'
    if isinstance(data, bytes):
        return data.startswith(head.encode())
    return data.startswith(head)


class LiveHub:
    """The live groups of one event loop's dashboards, and their Redis pub/sub link."""

    def __init__(self, loop: asyncio.AbstractEventLoop, url: str | None) -> None:
        self.loop = loop
        self.url = url
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.members: dict[str, set[LiveMember]] = {}
        # "idle" before the pub/sub link is first needed, "live" while it is subscribed (or
        # with no Redis at all), "lost" from a failure until it is subscribed again.
        self.state = "live" if url is None else "idle"
        self._confirmed: set[str] = set()  # channels whose subscription Redis confirmed
        self._confirm_waiters: dict[str, list[asyncio.Future]] = {}
        self._pubsub: Any = None
        self._wanted = asyncio.Event()  # some group has members: the listener is needed
        self._outbox: list[tuple[str, str]] = []
        self._outbox_ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._client: aioredis.Redis | None = None
        if url is not None:
            # No retries inside redis-py: a lost connection must be seen here, where the
            # members are told, not reconnected silently with the gap's messages lost.
            self._client = redis_client_async(timeout=None, url=url, retries=False)
            self._tasks = [
                loop.create_task(self._listen(), name="live-hub-listen"),
                loop.create_task(self._send_outbox(), name="live-hub-publish"),
            ]

    # --- Membership (on the loop) ----------------------------------------------------------
    async def join(self, group: str, member: LiveMember) -> None:
        """Add a member; returns once events published anywhere from now on reach it (or at
        once, with the link down: then the member gets this process's events and is told
        ``live_restored`` when the link is back)."""
        members = self.members.setdefault(group, set())
        members.add(member)
        if self.url is None:
            return
        channel = live_channel(group)
        if channel in self._confirmed:
            return
        self._wanted.set()  # the listener subscribes every group that has members
        waiter = None
        if self.state != "lost":
            waiter = self.loop.create_future()
            self._confirm_waiters.setdefault(channel, []).append(waiter)
        try:
            if self._pubsub is not None:
                await self._pubsub.subscribe(channel)
            if waiter is not None:
                await asyncio.wait_for(asyncio.shield(waiter), settings.LIVE_SUBSCRIBE_TIMEOUT)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            logger.warning("live subscription to %s not confirmed: %r", group, exc)

    def leave(self, group: str, member: LiveMember) -> None:
        members = self.members.get(group)
        if members is None:
            return
        members.discard(member)
        if members:
            return
        del self.members[group]
        channel = live_channel(group)
        self._confirmed.discard(channel)
        if self._pubsub is not None and self.state == "live":
            task = self.loop.create_task(self._unsubscribe(channel))
            task.add_done_callback(_log_failure)

    async def _unsubscribe(self, channel: str) -> None:
        with contextlib.suppress(redis.RedisError, OSError):
            await self._pubsub.unsubscribe(channel)

    # --- Publishing (on the loop) ----------------------------------------------------------
    async def publish(self, events: Events) -> None:
        """Deliver to this process's members now; queue one PUBLISH per event for the rest
        (sent in order, a flush's worth per round trip, without holding up the caller)."""
        for group, event in events:
            # One per event: its JSON is encoded once, for Redis and for all members.
            delivery = LiveEvent(event)
            if self.url is not None:
                self._outbox.append((live_channel(group), _packed(self.origin, delivery.text())))
            await self._deliver(group, delivery)
        if self._outbox:
            if len(self._outbox) > OUTBOX_LIMIT:
                dropped = len(self._outbox) - OUTBOX_LIMIT
                del self._outbox[:dropped]
                metrics.CHANNEL_LAYER_SEND_FAILURES.inc(dropped)  # metrics
            self._outbox_ready.set()

    async def deliver(self, group: str, event: dict[str, Any]) -> None:
        await self._deliver(group, LiveEvent(event))

    async def _deliver(self, group: str, delivery: LiveEvent) -> None:
        members = self.members.get(group)
        if not members:
            return
        for member in list(members):
            try:
                await member.live_event(delivery)
            except Exception:
                logger.exception("live event to a member of %s failed", group)

    async def _send_outbox(self) -> None:
        assert self._client is not None
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch, self._outbox = self._outbox, []
            if not batch:
                continue
            pipe = self._client.pipeline(transaction=False)
            for channel, data in batch:
                pipe.publish(channel, data)
            try:
                await pipe.execute()
            except (redis.RedisError, OSError) as exc:
                # Lost for other processes; their dashboards are told by their own hubs (the
                # same Redis is gone for them) and resynchronise when it is back.
                metrics.CHANNEL_LAYER_SEND_FAILURES.inc(len(batch))  # metrics
                logger.warning("publishing %d live event(s) failed: %r", len(batch), exc)
                await asyncio.sleep(settings.LIVE_RECONNECT_DELAYS[0])

    # --- The pub/sub link ------------------------------------------------------------------
    async def _listen(self) -> None:
        assert self._client is not None
        failures = 0
        while True:
            await self._wanted.wait()
            pubsub = self._client.pubsub()
            try:
                await pubsub.connect()
                # Set before the channels are listed: a member joining from here on
                # subscribes its group itself, one that joined before is in the list.
                self._pubsub = pubsub
                channels = [live_channel(group) for group in self.members]
                if not channels:
                    self._wanted.clear()
                    continue
                await pubsub.subscribe(*channels)
                failures = 0
                await self._read(pubsub, expect=set(channels))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if self.state != "lost":
                    logger.warning("live pub/sub link lost: %r", exc)
                    await self._lost(exc)
            finally:
                self._pubsub = None
                self._confirmed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            delays = settings.LIVE_RECONNECT_DELAYS
            await asyncio.sleep(delays[min(failures, len(delays) - 1)])

    async def _read(self, pubsub: Any, *, expect: set[str]) -> None:
        """Read the link until it fails; ``expect``: channels whose confirmation makes the link
        live again after a loss."""
        idle = 0.0
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                idle += 1.0
                if idle >= settings.LIVE_PING_SECONDS:
                    idle = 0.0
                    await pubsub.ping()
                continue
            idle = 0.0
            kind = message["type"]
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            if kind == "message":
                if not _is_from(self.origin, message["data"]):
                    _, event = _unpack(message["data"])
                    await self.deliver(channel.removeprefix(live_channel("")), event)
            elif kind == "subscribe":
                self._confirmed.add(channel)
                for waiter in self._confirm_waiters.pop(channel, []):
                    if not waiter.done():
                        waiter.set_result(None)
                expect.discard(channel)
                if not expect and self.state != "live":
                    was, self.state = self.state, "live"
                    if was == "lost":
                        logger.info("live pub/sub link restored")

    def link_ok(self) -> bool:
        """Whether what other processes publish reaches this hub's members (no link needed, no
        members yet, or subscribed)."""
        return self.url is None or not self.members or self.state == "live"

    async def _lost(self, exc: BaseException) -> None:
        self.state = "lost"
        for waiters in self._confirm_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)  # the member hears of it from the live feed
        self._confirm_waiters.clear()
        for handler in list(_link_lost_handlers):
            try:
                handler(self.loop, exc)
            except Exception:
                logger.exception("a live link-lost handler failed")

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("live hub task failed: %r", task.exception())


# --- One hub per event loop -----------------------------------------------------------------
hubs: PerLoop[LiveHub] = PerLoop(lambda loop: LiveHub(loop, _redis_url()))


def hub_get() -> LiveHub:
    """The hub of the running event loop (one per server process), made on first use."""
    return hubs.get()


async def hub_publish(events: Events) -> None:
    """Publish live events from async code (the ingest batcher, device connections)."""
    if events:
        await hub_get().publish(events)


def hub_publish_sync(events: Events) -> None:
    """Publish live events from synchronous code, in any process and thread: one pipelined
    round trip, bounded by ``LIVE_CALL_TIMEOUT``. Raises ``redis.RedisError`` when Redis
    cannot be reached."""
    if not events:
        return
    url = _redis_url()
    if url is None:
        _deliver_in_process(events)
        return
    pipe = redis_client(timeout=settings.LIVE_CALL_TIMEOUT, url=url).pipeline(transaction=False)
    for group, event in events:
        pipe.publish(live_channel(group), _pack("sync", event))
    pipe.execute()


def _deliver_in_process(events: Events) -> None:
    """No Redis (in-memory layer): hand the events to every hub of this process."""
    for hub in hubs.open_ones():
        for group, event in events:
            coroutine = hub.deliver(group, event)
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is hub.loop:
                hub.loop.create_task(coroutine)
            else:
                asyncio.run_coroutine_threadsafe(coroutine, hub.loop)
