"""The one door for live events: every caller, async or sync, in a transaction or not, publishes
with :func:`live_publish` (zulip's ``send_event`` / ``send_event_on_commit`` are the model).

Behind the door are two private backends, chosen per group:

- the dashboards' groups (wards, ward-less patients: ``groups.is_live_group``) go through the
  process-local live hub (``live.hub``): delivered at once to this process's dashboards, and
  with ONE Redis ``PUBLISH`` per group to the other processes';
- the other groups (a device's, a user's: rare control events) through the channel layer
  (``live.layer``).

On an event loop (the ingest batcher, device connections) the hub's part never waits for
Redis, and the channel layer's is skipped while the live feed is degraded (``live.feed``:
nobody would hear it; connections re-check when the feed is restored) and bounded by
``LIVE_CALL_TIMEOUT`` otherwise; a failure degrades the feed. From synchronous code (REST
views, Celery tasks, the alarm evaluator) the hub publishes with one pipelined round trip and
the channel layer through a private loop thread; a failure is logged (a lost broadcast is
repaired by the dashboard's next snapshot), or raised with ``raise_errors``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Generator, Iterable
from typing import Any

from django.conf import settings
from django.db import transaction

from monitoring.live.events import Event, Events
from monitoring.live.feed import live_feed
from monitoring.live.groups import is_live_group
from monitoring.live.hub import hub_publish, hub_publish_sync
from monitoring.live.layer import layer_send, layer_send_sync

logger = logging.getLogger(__name__)

_background: set[asyncio.Task] = set()


class Published:
    """What :func:`live_publish` hands back. Async callers await it when they must know that
    this process's dashboards have the events (the batcher, before its acks): the send then
    runs inline, without a task or a loop turn of its own. Not awaited, it runs by itself on
    the loop's next turn. From synchronous code it is already done."""

    __slots__ = ("_coroutine", "_task")

    def __init__(
        self,
        coroutine: Coroutine[Any, Any, None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._coroutine = coroutine
        self._task: asyncio.Task | None = None
        if coroutine is not None and loop is not None:
            loop.call_soon(self._start)

    def _start(self) -> None:
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is not None:  # nobody awaited it: run it on its own
            self._task = task = asyncio.get_running_loop().create_task(coroutine)
            _background.add(task)
            task.add_done_callback(_background.discard)

    def __await__(self) -> Generator[Any, None, None]:
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is not None:
            yield from coroutine.__await__()
        elif self._task is not None:
            yield from self._task.__await__()


_DONE = Published()


def live_publish(
    events: Iterable[Event], *, on_commit: bool = False, raise_errors: bool = False
) -> Published:
    """Publish ``(group, event)`` pairs to whoever listens on the groups.

    ``on_commit``: once the current transaction commits (at once outside one), so nobody hears
    of what was rolled back. ``raise_errors``: raise a synchronous send's failure instead of
    logging it (tests); async sends report failures to the live feed."""
    events = list(events)
    if not events:
        return _DONE
    if on_commit:
        transaction.on_commit(lambda: live_publish(events, raise_errors=raise_errors))
        return _DONE
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _publish_sync(events, raise_errors=raise_errors)
        return _DONE
    return Published(_publish_async(events), loop)


def live_split(events: Iterable[Event]) -> tuple[list[Event], list[Event]]:
    """(the dashboards' events, the channel layer's)."""
    live: list[Event] = []
    other: list[Event] = []
    for group, event in events:
        (live if is_live_group(group) else other).append((group, event))
    return live, other


async def _publish_async(events: Events) -> None:
    live, other = live_split(events)
    if live:
        await hub_publish(live)  # never fails: the hub queues what Redis does not take
    feed = live_feed()
    if feed.degraded or not other:
        return
    try:
        async with asyncio.timeout(settings.LIVE_CALL_TIMEOUT):
            failed = await layer_send(other)
    except TimeoutError as exc:
        feed.report("group_send", exc)
        return
    if failed:
        feed.report("group_send", RuntimeError(f"{failed} group send(s) failed"))


def _publish_sync(events: Events, *, raise_errors: bool) -> None:
    try:
        live, other = live_split(events)
        hub_publish_sync(live)
        layer_send_sync(other)
    except Exception:
        if raise_errors:
            raise
        logger.exception("publishing %d live event(s) failed", len(events))
