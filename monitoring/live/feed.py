"""The live feed of this process while Redis is away: told, watched, and given back.

Redis carries the channel layer (dashboard fan-out, device re-checks), device presence and
the readings stream; PostgreSQL is the durable store. When a Redis call on the live path
fails, the caller reports it here (:func:`outage_report`) and goes on without it: readings
are still stored and acked, a connection that could not join its groups stays open. This
module then

- tells every connection of this process that registered (:func:`outage_listen`) that the
  live feed is degraded (dashboards get a ``live.degraded`` frame),
- probes Redis every ``LIVE_PROBE_SECONDS`` until it answers, and then
- tells them that it is back: they join their groups again and dashboards get fresh
  snapshots (``live.restored``).

One :class:`LiveFeed` per event loop (a server process has one), like the ingest batcher.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from common.loops import PerLoop
from common.redis_errors import REDIS_ERRORS
from monitoring.live.hub import hub_link_lost_handle, hubs
from monitoring.live.layer import channel_layer_ping

logger = logging.getLogger(__name__)

# The timeouts and back-offs of the live path are settings (config/settings.py, LIVE_*): a
# Redis that accepts connections but does not answer (a hung server, a black-holed host) must
# not hold a device's connect or an ingest flush (and so the acks) for longer than
# LIVE_CALL_TIMEOUT.


class OutageListener(Protocol):
    async def live_degraded(self, feed: LiveFeed) -> None: ...

    async def live_restored(self, feed: LiveFeed) -> None: ...


class LiveFeed:
    """Whether this process's Redis-backed live feed works, and who wants to hear of it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        probe: Callable[[], Awaitable[object]] | None = None,
        probe_seconds: float | None = None,
    ) -> None:
        self.loop = loop
        self.degraded = False
        self.since: float | None = None  # time.time() of the first failure of this outage
        self.reason = ""
        self.outages = 0  # outages seen by this process (each one ended or still on)
        self._probe = probe or _probe_default
        self._probe_seconds = probe_seconds or settings.LIVE_PROBE_SECONDS
        self._listeners: set[OutageListener] = set()
        self._probe_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- listeners (connections of this process) ---

    def listen(self, listener: OutageListener) -> None:
        self._listeners.add(listener)

    def unlisten(self, listener: OutageListener) -> None:
        self._listeners.discard(listener)

    # --- state ---

    def report(self, where: str, exc: BaseException) -> None:
        """A Redis call on the live path failed: degrade (once) and start probing."""
        if self.degraded:
            return
        self.degraded, self.since, self.reason = True, time.time(), f"{where}: {exc!r}"
        self.outages += 1
        logger.error("live feed degraded: Redis is unavailable (%s)", self.reason)
        self._notify("live_degraded")
        self._probe_task = self.loop.create_task(self._probe_until_back(), name="redis-probe")

    def frame(self) -> dict[str, Any]:
        """The ``live.degraded`` frame for a dashboard (the contract's additive frame)."""
        since = datetime.fromtimestamp(self.since or time.time(), UTC)
        return {"type": "live.degraded", "since": since.isoformat(), "reason": "redis_unavailable"}

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self._probe_seconds)
            try:
                await self._probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # still away (any error: the probe must never die)
                _raise_if_cancelled(exc)
                logger.debug("Redis probe failed: %r", exc)
                continue
            break
        lasted = time.time() - (self.since or time.time())
        self.degraded, self.since, self.reason = False, None, ""
        logger.warning("live feed restored: Redis answers again after %.1f s", lasted)
        self._notify("live_restored")

    def _notify(self, method: str) -> None:
        for listener in list(self._listeners):
            task = self.loop.create_task(self._call(listener, method))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _call(self, listener: OutageListener, method: str) -> None:
        try:
            await getattr(listener, method)(self)
        except Exception:  # one connection's failure is its own
            logger.exception("%s of %r failed", method, listener)

    def close(self) -> None:
        """Stop probing and notifying (a feed whose loop is closed has nothing left to stop:
        cancelling a task there would raise "Event loop is closed")."""
        self._listeners.clear()
        if self.loop.is_closed():
            return
        for task in [self._probe_task, *self._tasks]:
            if task is not None:
                task.cancel()


async def _probe_default() -> None:
    await channel_layer_ping(get_channel_layer())
    # Back only once the live fan-out is subscribed again: dashboards resynchronise then, and
    # what is published after their snapshot must reach them.
    hub = hubs.existing(asyncio.get_running_loop())
    if hub is not None and not hub.link_ok():
        raise ConnectionError("the live fan-out is not subscribed again yet")


def _raise_if_cancelled(exc: BaseException) -> None:
    """A task that was cancelled while in a Redis call may see the client's connection error
    instead of the cancellation (the client closes the connection on the way out): end as
    cancelled then, never retry, or whoever cancelled it (a closing consumer) waits for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


_feeds: PerLoop[LiveFeed] = PerLoop(LiveFeed, close=LiveFeed.close)


def live_feed(loop: asyncio.AbstractEventLoop | None = None) -> LiveFeed:
    """The live feed of the running event loop (or ``loop``): one per server process."""
    return _feeds.get(loop)


def outage_report(where: str, exc: BaseException) -> None:
    """Report a failed Redis call of the live path (on the event loop)."""
    live_feed().report(where, exc)


def _hub_link_lost(loop: asyncio.AbstractEventLoop, exc: BaseException) -> None:
    live_feed(loop).report("live fan-out", exc)


hub_link_lost_handle(_hub_link_lost)


# --- Degrading helpers for the consumers ------------------------------------


async def groups_join(layer: Any, channel: str, groups: Iterable[str]) -> set[str]:
    """``group_add`` each group; returns those that could not be joined (Redis away: reported,
    to be joined again when the feed is restored) instead of raising. While the feed is
    degraded nothing is tried (a hung Redis would cost every connect a timeout): the
    connection joins its groups when the feed is restored."""
    if live_feed().degraded:
        return set(groups)
    missed: set[str] = set()
    for group in groups:
        try:
            async with asyncio.timeout(settings.LIVE_CALL_TIMEOUT):
                await layer.group_add(group, channel)
        except REDIS_ERRORS as exc:  # (TimeoutError is an OSError)
            _raise_if_cancelled(exc)
            outage_report("group_add", exc)
            missed.add(group)
    return missed


async def groups_leave(layer: Any, channel: str, groups: Iterable[str]) -> None:
    """``group_discard`` each group; a failure is only logged (the membership expires with
    ``group_expiry``, and a restarted Redis holds none). Nothing is tried while the feed is
    degraded."""
    if live_feed().degraded:
        return
    for group in groups:
        try:
            async with asyncio.timeout(settings.LIVE_CALL_TIMEOUT):
                await layer.group_discard(group, channel)
        except REDIS_ERRORS as exc:
            _raise_if_cancelled(exc)
            logger.warning("group_discard of %s failed: %r", group, exc)


def receive_resilient(
    receive: Callable[[], Awaitable[dict[str, Any]]],
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A channel-layer ``receive`` that outlasts a Redis outage.

    A consumer awaits its channel's ``receive`` for as long as it lives; channels-redis raises
    when Redis goes away, which ends the consumer and makes the server close the WebSocket
    (1011). This one reports the failure and tries again, backing off up to
    ``LIVE_RECEIVE_RETRY_MAX_SECONDS``, so the connection stays open and hears its groups again
    once Redis is back.
    """

    async def receive_retrying() -> dict[str, Any]:
        delay = 0.05
        while True:
            try:
                return await receive()
            except REDIS_ERRORS as exc:
                _raise_if_cancelled(exc)
                outage_report("receive", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, settings.LIVE_RECEIVE_RETRY_MAX_SECONDS)

    return receive_retrying
