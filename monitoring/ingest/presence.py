"""Device presence: which devices hold a live connection to some server process, and when
each was last seen. Each process keeps its own connections' presence (``Presence``) and
writes it every ``PRESENCE_INTERVAL`` seconds in one bulk UPDATE and one Redis call (skipped while Redis is
away: ``devices_online`` then falls back to ``last_seen_at``)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import close_old_connections, connection
from django.utils import timezone

from clinical.selectors import devices_assignment
from clinical.services import devices_seen
from common.redis_errors import REDIS_ERRORS
from monitoring.live.groups import device_group
from monitoring.live.publish import live_publish

logger = logging.getLogger(__name__)

PRESENCE_INTERVAL = 5.0  # seconds between bulk last_seen_at updates and presence refreshes
_PRESENCE_KEY = "device-online:{}"


def presence_key(device_id: int) -> str:
    return _PRESENCE_KEY.format(device_id)


def devices_online(
    device_ids: Iterable[int], *, last_seen: Mapping[int, datetime | None] | None = None
) -> set[int]:
    """Which of these devices hold a live connection to some server process (one Redis call).

    While Redis is away the presence keys cannot be read: then a device counts as online when
    ``last_seen`` (its ``last_seen_at``, which every process writes to the database every
    ``PRESENCE_INTERVAL`` for its connected devices) is within the presence keys' lifetime."""
    ids = list(device_ids)
    if not ids:
        return set()
    try:
        found = cache.get_many([presence_key(i) for i in ids])
    except REDIS_ERRORS as exc:
        logger.warning("presence unreadable (%r): online from last_seen_at", exc)
        horizon = timezone.now() - timedelta(seconds=presence_ttl())
        seen = last_seen or {}
        return {i for i in ids if (at := seen.get(i)) is not None and at >= horizon}
    return {i for i in ids if presence_key(i) in found}


def presence_ttl() -> int:
    return int(PRESENCE_INTERVAL * 3) + 1


@dataclass(slots=True)
class Presence:
    seen: dict[int, float] = field(default_factory=dict)  # device id -> time.time() seen
    connected: dict[int, int] = field(default_factory=dict)  # device id -> connection count
    gone: set[int] = field(default_factory=set)
    last_flush: float = 0.0
    # device id -> (patient id, token hash) its connection streams for; checked against the
    # database on every presence write so a reassigned, deactivated or re-keyed device is
    # told within PRESENCE_INTERVAL even if nobody sent it ``device.changed``.
    expected: dict[int, tuple[int, str]] = field(default_factory=dict)


def presence_write(
    seen: dict[int, float],
    connected: set[int],
    gone: set[int],
    expected: dict[int, tuple[int, str]] | None = None,
    *,
    keys: bool = True,
) -> list[int]:
    """Returns the connected devices whose assignment, state or token changed. ``keys``: also
    refresh the presence keys in Redis (skipped while it is known to be away)."""
    close_old_connections()
    now = timezone.now()
    # One UPDATE for every device seen (readings or connection) since the last write; the
    # timestamp is at most PRESENCE_INTERVAL old, good enough for "last seen".
    ids = sorted(set(seen) | connected)
    if keys:
        presence_keys_write(connected, gone)
    try:
        if ids:
            devices_seen(device_ids=ids, at=now)
        if expected:
            current = {
                device_id: (patient_id, token_hash) if is_active else None
                for device_id, (patient_id, token_hash, is_active) in devices_assignment(
                    device_ids=expected
                ).items()
            }
            return [i for i, wanted in expected.items() if current.get(i) != wanted]
    except Exception:
        connection.close()
        logger.exception("presence update failed")
    return []


def presence_keys_write(connected: set[int], gone: set[int]) -> bool:
    """Refresh the presence keys (Redis); False when Redis is away. The database's
    ``last_seen_at`` is written regardless, and :func:`devices_online` falls back to it."""
    try:
        if connected:
            cache.set_many({presence_key(i): 1 for i in connected}, timeout=presence_ttl())
        offline = gone - connected
        if offline:
            cache.delete_many([presence_key(i) for i in offline])
    except REDIS_ERRORS as exc:
        logger.warning("presence keys not written: Redis is unavailable (%r)", exc)
        return False
    return True


class DevicePresence:
    """The presence of this process's device connections, written in a thread of its own (a
    bulk UPDATE and a Redis ``set_many`` never queue in front of an ingest flush): every
    ``PRESENCE_INTERVAL`` (the batcher's loop calls :meth:`flush_if_due`), and at once when a
    connection opens or closes (:meth:`flush`). Devices whose assignment, state or token
    changed meanwhile are told (``device.changed``), and their connections re-check."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, keys: Callable[[], bool]) -> None:
        self.loop = loop
        self._keys = keys  # whether to write the Redis keys too (False while Redis is away)
        self._state = Presence()
        self.seen = self._state.seen  # device id -> time.time() seen (readings mark it)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-presence")
        self._lock = asyncio.Lock()
        self._next: asyncio.Task | None = None
        self._periodic: asyncio.Task | None = None

    def device_connected(
        self, device_id: int, *, patient_id: int | None = None, token_hash: str | None = None
    ) -> None:
        state = self._state
        if patient_id is not None and token_hash is not None:
            state.expected[device_id] = (patient_id, token_hash)
        state.connected[device_id] = state.connected.get(device_id, 0) + 1
        state.seen[device_id] = time.time()
        state.gone.discard(device_id)

    def device_disconnected(self, device_id: int) -> None:
        state = self._state
        count = state.connected.get(device_id, 0) - 1
        if count <= 0:
            state.connected.pop(device_id, None)
            state.expected.pop(device_id, None)
            state.gone.add(device_id)
        else:
            state.connected[device_id] = count
        state.seen[device_id] = time.time()

    def due_in(self) -> float:
        """Seconds until the next periodic write."""
        return max(0.0, PRESENCE_INTERVAL - (time.monotonic() - self._state.last_flush))

    def flush_if_due(self) -> None:
        """Start the periodic write in the background when it is due (never delaying a flush)."""
        if self.due_in() > 0 or (self._periodic is not None and not self._periodic.done()):
            return
        self._state.last_flush = time.monotonic()
        self._periodic = self.loop.create_task(self.flush())

    async def flush(self) -> None:
        """Write last_seen_at and the presence keys now.

        Callers that arrive while a write is queued share it (a burst of 500 connections
        costs a few writes, not 500), and every change made before the call is in the write
        that the call awaits.
        """
        if self._next is None:
            self._next = self.loop.create_task(self._write_next())
        await asyncio.shield(self._next)

    async def _write_next(self) -> None:
        async with self._lock:
            self._next = None  # later callers start the next write
            state = self._state
            seen, state.seen = state.seen, {}
            self.seen = state.seen
            gone, state.gone = state.gone, set()
            connected = set(state.connected)
            expected = dict(state.expected)
            state.last_flush = time.monotonic()
            if not (seen or gone or connected):
                return
            write = functools.partial(
                presence_write, seen, connected, gone, expected, keys=self._keys()
            )
            changed = await self.loop.run_in_executor(self._executor, write)
            # The connections re-check the device and close with the fitting code.
            await live_publish([(device_group(i), {"type": "device.changed"}) for i in changed])

    async def aclose(self) -> None:
        await self.loop.run_in_executor(self._executor, _connection_close)
        self._executor.shutdown(wait=False)

    def close(self) -> None:
        self._executor.submit(_connection_close)
        self._executor.shutdown(wait=False)


def _connection_close() -> None:
    connection.close()  # the calling thread's own connection
