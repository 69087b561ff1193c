"""The real-time ingest pipeline: batch, store, broadcast, acknowledge, evaluate alarms.

Every device connection of a server process hands its parsed readings to one per-process
:class:`IngestBatcher`. The batcher flushes every ``INGEST_FLUSH_INTERVAL`` seconds (or at
``INGEST_MAX_BATCH`` readings):

1. ONE ``readings_store`` (a multi-row ``INSERT .. ON CONFLICT DO NOTHING RETURNING``) in the
   batcher's own worker thread, which holds one database connection;
2. ONE ``reading.batch`` group message per ward with the readings that were new (duplicates
   are not re-broadcast), so dashboards see each reading once;
3. then it resolves each connection's future, and only then does the connection send its
   ``ack`` (acks follow the commit);
4. finally the after-store hooks (alarm evaluation) run in a separate worker thread, off the
   event loop and never in front of an ack.

The REST path (``monitoring.ingest.readings_ingest``) reuses steps 2 and 4 synchronously.

Publishing from synchronous code (REST views, Celery tasks) goes through
:func:`groups_send_sync`, which owns a private event loop thread and channel-layer instance
per process, so callers never create and close event loops around the channel layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from monitoring.groups import device_group, patient_group, ward_group
from monitoring.ingest import ReadingIn, StoredReading, readings_store

logger = logging.getLogger(__name__)

# --- After-store hooks -----------------------------------------------------------------------
# Dotted paths of callables ``hook(*, stored: list[StoredReading]) -> None`` run after every
# stored batch, on both the WebSocket and the REST path. A hook whose module does not exist
# (yet) is skipped; a hook that raises is logged and does not affect storage or acks.
AFTER_STORE_HOOKS: list[str | Callable[..., Any]] = ["clinical.alarms.alarms_evaluate"]

_missing_hooks: set[str] = set()


def _resolve_hook(hook: str | Callable[..., Any]) -> Callable[..., Any] | None:
    if callable(hook):
        return hook
    module_name, _, attribute = hook.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this module is not installed" is tolerated, not an import error inside it.
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        if hook not in _missing_hooks:
            _missing_hooks.add(hook)
            logger.info("after-store hook %s is not available; skipped", hook)
        return None
    return getattr(module, attribute, None)


def after_store_run(*, stored: Sequence[StoredReading]) -> None:
    """Run every after-store hook on newly stored readings (synchronous; logs failures)."""
    if not stored:
        return
    for hook in list(AFTER_STORE_HOOKS):
        try:
            function = _resolve_hook(hook)
            if function is not None:
                # Inside a caller's transaction (REST path) a savepoint, so a failing hook
                # does not poison it. In autocommit (the batcher's hook thread) no wrapping
                # transaction: on SQLite it would hold the write lock for the whole hook.
                savepoint = transaction.atomic() if connection.in_atomic_block else None
                with savepoint or contextlib.nullcontext():
                    function(stored=list(stored))
        except Exception:
            logger.exception("after-store hook %s failed", hook)


# --- Group events ----------------------------------------------------------------------------


def scope_group(*, ward_id: int | None, patient_id: int) -> str:
    """The one group that carries a patient's live events: its ward's group, or the patient's
    own group when the patient has no ward. Dashboards watching a single patient listen on
    that group and filter by patient, so a flush costs one group_send per ward, however many
    patients are watched (a per-patient copy made flushes several times more expensive)."""
    return ward_group(ward_id) if ward_id is not None else patient_group(patient_id)


def reading_batch_events(stored: Iterable[StoredReading]) -> list[tuple[str, dict[str, Any]]]:
    """``reading.batch`` group messages for stored readings: ONE per ward (per flush)."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for reading in stored:
        group = scope_group(ward_id=reading.ward_id, patient_id=reading.patient_id)
        by_group.setdefault(group, []).append(reading_item(reading))
    return [(g, {"type": "reading.batch", "items": items}) for g, items in by_group.items()]


def reading_item(reading: StoredReading) -> dict[str, Any]:
    """The live ``readings`` frame item (msgpack-safe: only ints and strings)."""
    return {**reading.as_event(), "ward": reading.ward_id}


def device_status_events(
    *,
    device_id: int,
    serial: str,
    patient_id: int,
    ward_id: int | None,
    online: bool,
    last_seen_at: str | None,
) -> list[tuple[str, dict[str, Any]]]:
    event = {
        "type": "device.status",
        "device": device_id,
        "serial": serial,
        "patient": patient_id,
        "ward": ward_id,
        "online": online,
        "status": "online" if online else "offline",
        "last_seen_at": last_seen_at,
    }
    return [(scope_group(ward_id=ward_id, patient_id=patient_id), event)]


async def groups_with_members(layer: Any, groups: Iterable[str]) -> set[str] | None:
    """Which of these groups have members, in one Redis round trip per shard (None: unknown).

    A ``group_send`` costs two round trips even to an empty group, and most patient groups
    (and wards nobody watches) are empty: checking them all at once first halves the Redis
    work of a flush. No reading is lost by skipping: a dashboard joins its group before it
    reads its snapshot, and the check runs after the readings were committed, so a reading
    is either in the snapshot or sent to the group.
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


async def groups_send(events: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Send group messages from async code, concurrently; a failure is logged, not raised.

    Groups without members are skipped (see :func:`groups_with_members`).
    """
    if not events:
        return
    layer = get_channel_layer()
    try:
        members = await groups_with_members(layer, {group for group, _ in events})
    except Exception:
        logger.exception("group membership check failed; sending to every group")
        members = None
    if members is not None:
        events = [(group, event) for group, event in events if group in members]
        if not events:
            return
    results = await asyncio.gather(
        *(layer.group_send(group, event) for group, event in events), return_exceptions=True
    )
    for (group, _), result in zip(events, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("group_send to %s failed: %r", group, result)


async def readings_publish(*, stored: Sequence[StoredReading]) -> None:
    """Broadcast newly stored readings to their wards' groups (async)."""
    await groups_send(reading_batch_events(stored))


def readings_publish_sync(*, stored: Sequence[StoredReading]) -> None:
    """Broadcast newly stored readings from synchronous code (REST views, Celery tasks)."""
    groups_send_sync(reading_batch_events(stored))


# --- Publishing from synchronous code --------------------------------------------------------


class _SyncPublisher:
    """A private event loop in a daemon thread with its own channel-layer instance.

    ``async_to_sync(layer.group_send)`` creates and closes an event loop per call in threads
    without one (Celery workers), which strands the layer's Redis connections on dead loops
    ("Event loop is closed"). Here every send runs on one long-lived loop, from any thread.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.layer = channel_layers.make_backend("default")
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="channel-layer-publisher", daemon=True
        )
        self.thread.start()

    def send(self, events: Sequence[tuple[str, dict[str, Any]]], timeout: float) -> None:
        async def send_all() -> None:
            members = await groups_with_members(self.layer, {g for g, _ in events})
            todo = events if members is None else [(g, e) for g, e in events if g in members]
            results = await asyncio.gather(
                *(self.layer.group_send(g, e) for g, e in todo), return_exceptions=True
            )
            for (group, _), result in zip(todo, results, strict=True):
                if isinstance(result, BaseException):
                    raise result if isinstance(result, Exception) else RuntimeError(group)

        future: ThreadFuture = asyncio.run_coroutine_threadsafe(send_all(), self.loop)
        future.result(timeout)


_publisher: _SyncPublisher | None = None
_publisher_lock = threading.Lock()


def groups_send_sync(
    events: Sequence[tuple[str, dict[str, Any]]],
    *,
    timeout: float = 5.0,
    raise_errors: bool = False,
) -> None:
    """THE way synchronous code publishes to channel-layer groups.

    ``events`` are ``(group, message)`` pairs with msgpack-safe messages. Safe from any
    thread and any number of times, from Django views, Celery tasks (prefork: one publisher
    per process, created after the fork) and management commands. Errors are logged unless
    ``raise_errors``; a lost broadcast is repaired by the dashboard's next snapshot.
    """
    global _publisher
    if not events:
        return
    try:
        if isinstance(get_channel_layer(), InMemoryChannelLayer):
            # The in-memory layer lives in one process and one loop (tests, --memory runs).
            from asgiref.sync import async_to_sync

            async_to_sync(groups_send)(list(events))
            return
        with _publisher_lock:
            if _publisher is None or _publisher.pid != os.getpid():
                _publisher = _SyncPublisher()
            publisher = _publisher
        publisher.send(list(events), timeout)
    except Exception:
        if raise_errors:
            raise
        logger.exception("publishing %d group message(s) failed", len(events))


# --- Device presence -------------------------------------------------------------------------
PRESENCE_INTERVAL = 5.0  # seconds between bulk last_seen_at updates and presence refreshes
_PRESENCE_KEY = "device-online:{}"


def presence_key(device_id: int) -> str:
    return _PRESENCE_KEY.format(device_id)


def devices_online(device_ids: Iterable[int]) -> set[int]:
    """Which of these devices hold a live connection to some server process (one Redis call)."""
    ids = list(device_ids)
    if not ids:
        return set()
    found = cache.get_many([presence_key(i) for i in ids])
    return {i for i in ids if presence_key(i) in found}


def _presence_ttl() -> int:
    return int(PRESENCE_INTERVAL * 3) + 1


# --- The batcher -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    readings: list[ReadingIn]
    wards: dict[int, int | None]
    future: asyncio.Future


@dataclass(slots=True)
class _Presence:
    seen: dict[int, float] = field(default_factory=dict)  # device id -> time.time() seen
    connected: dict[int, int] = field(default_factory=dict)  # device id -> connection count
    gone: set[int] = field(default_factory=set)
    last_flush: float = 0.0
    # device id -> (patient id, token hash) its connection streams for; checked against the
    # database on every presence write so a reassigned, deactivated or re-keyed device is
    # told within PRESENCE_INTERVAL even if nobody sent it ``device.changed``.
    expected: dict[int, tuple[int, str]] = field(default_factory=dict)


class IngestBatcher:
    """Collects readings from every device connection of this process and flushes them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pending: list[_Entry] = []
        self._pending_count = 0
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        # One thread = one database connection for the hot path; hooks get their own thread.
        self._store_executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-store")
        self._hook_executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-hooks")
        # Presence writes (a bulk UPDATE and a Redis set_many) never queue in front of a flush.
        self._presence_executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-presence")
        self._presence_lock = asyncio.Lock()
        self._presence_next: asyncio.Task | None = None
        self._presence_task: asyncio.Task | None = None
        self._hook_backlog: list[StoredReading] = []
        self._hook_running = False
        self._hooks_idle = asyncio.Event()
        self._hooks_idle.set()
        self._presence = _Presence()
        self._task = loop.create_task(self._run(), name="ingest-batcher")
        self.flushes = 0
        self.stored_count = 0

    # Called by device connections (on the event loop).
    def submit(self, readings: list[ReadingIn], wards: dict[int, int | None]) -> asyncio.Future:
        """Queue readings; the future resolves (to None) after they are durably stored."""
        future = self.loop.create_future()
        if not readings:
            future.set_result(None)
            return future
        self._pending.append(_Entry(readings, wards, future))
        self._pending_count += len(readings)
        now = time.time()
        for reading in readings:
            if reading.device_id is not None:
                self._presence.seen[reading.device_id] = now
        self._wakeup.set()
        if self._pending_count >= settings.INGEST_MAX_BATCH:
            self._full.set()
        return future

    def device_connected(
        self, device_id: int, *, patient_id: int | None = None, token_hash: str | None = None
    ) -> None:
        if patient_id is not None and token_hash is not None:
            self._presence.expected[device_id] = (patient_id, token_hash)
        self._presence.connected[device_id] = self._presence.connected.get(device_id, 0) + 1
        self._presence.seen[device_id] = time.time()
        self._presence.gone.discard(device_id)

    def device_disconnected(self, device_id: int) -> None:
        count = self._presence.connected.get(device_id, 0) - 1
        if count <= 0:
            self._presence.connected.pop(device_id, None)
            self._presence.expected.pop(device_id, None)
            self._presence.gone.add(device_id)
        else:
            self._presence.connected[device_id] = count
        self._presence.seen[device_id] = time.time()

    async def presence_flush(self) -> None:
        """Write last_seen_at and the presence keys now (also runs every few seconds).

        Callers that arrive while a write is queued share it (a burst of 500 connections
        costs a few writes, not 500), and every change made before the call is in the write
        that the call awaits.
        """
        if self._presence_next is None:
            self._presence_next = self.loop.create_task(self._presence_write_next())
        await asyncio.shield(self._presence_next)

    async def _presence_write_next(self) -> None:
        async with self._presence_lock:
            self._presence_next = None  # later callers start the next write
            presence = self._presence
            seen, presence.seen = presence.seen, {}
            gone, presence.gone = presence.gone, set()
            connected = set(presence.connected)
            expected = dict(presence.expected)
            presence.last_flush = time.monotonic()
            if not (seen or gone or connected):
                return
            changed = await self.loop.run_in_executor(
                self._presence_executor, _presence_write, seen, connected, gone, expected
            )
            # The connections re-check the device and close with the fitting code.
            await groups_send([(device_group(i), {"type": "device.changed"}) for i in changed])

    async def _run(self) -> None:
        interval = settings.INGEST_FLUSH_INTERVAL
        while True:
            try:
                timeout = max(0.0, PRESENCE_INTERVAL - (time.monotonic() - self._last_presence))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
                if self._pending:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), interval)
                    await self._flush()
                if time.monotonic() - self._last_presence >= PRESENCE_INTERVAL and (
                    self._presence_task is None or self._presence_task.done()
                ):
                    # In the background: a presence write never delays the next flush.
                    self._presence.last_flush = time.monotonic()
                    self._presence_task = self.loop.create_task(self.presence_flush())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("ingest batcher loop error")
                await asyncio.sleep(interval)

    @property
    def _last_presence(self) -> float:
        return self._presence.last_flush

    async def _flush(self) -> None:
        entries, self._pending = self._pending, []
        self._pending_count = 0
        self._wakeup.clear()
        self._full.clear()
        readings = [r for entry in entries for r in entry.readings]
        wards: dict[int, int | None] = {}
        for entry in entries:
            wards.update(entry.wards)
        try:
            stored = await self.loop.run_in_executor(
                self._store_executor, _store_in_thread, readings, wards
            )
        except Exception as exc:
            logger.exception("storing %d readings failed", len(readings))
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            return
        self.flushes += 1
        self.stored_count += len(stored)
        # Broadcast before acking so an acked reading is already on its way to dashboards.
        await readings_publish(stored=stored)
        for entry in entries:
            if not entry.future.done():
                entry.future.set_result(None)
        self._hooks_schedule(stored)

    def _hooks_schedule(self, stored: list[StoredReading]) -> None:
        if not stored or not AFTER_STORE_HOOKS:
            return
        # Batches that arrive while the hooks are busy are merged into the next call, so a
        # slow evaluator never queues unboundedly many calls and never delays an ack.
        self._hook_backlog.extend(stored)
        if not self._hook_running:
            self._hook_running = True
            self._hooks_idle.clear()
            self.loop.create_task(self._hooks_drain())

    async def _hooks_drain(self) -> None:
        try:
            while self._hook_backlog:
                batch, self._hook_backlog = self._hook_backlog, []
                await self.loop.run_in_executor(self._hook_executor, _hooks_in_thread, batch)
        finally:
            self._hook_running = False
            self._hooks_idle.set()

    async def drain(self) -> None:
        """Flush everything queued and wait for pending hooks (tests, shutdown)."""
        if self._pending:
            await self._flush()
        await self._hooks_idle.wait()

    async def aclose(self) -> None:
        """Stop: flush what is queued, then release the worker threads' DB connections."""
        self._task.cancel()
        await self.drain()
        for executor in (self._store_executor, self._hook_executor, self._presence_executor):
            await self.loop.run_in_executor(executor, _connection_close)
            executor.shutdown(wait=False)

    def close(self) -> None:
        self._task.cancel()
        for executor in (self._store_executor, self._hook_executor, self._presence_executor):
            executor.submit(_connection_close)
            executor.shutdown(wait=False)


def _connection_close() -> None:
    connection.close()  # the calling thread's own connection


def _store_in_thread(
    readings: list[ReadingIn], wards: dict[int, int | None]
) -> list[StoredReading]:
    close_old_connections()
    try:
        return readings_store(readings=readings, wards=wards)
    except Exception:
        # Drop a broken connection so the next flush reconnects.
        connection.close()
        raise


def _hooks_in_thread(stored: list[StoredReading]) -> None:
    close_old_connections()
    after_store_run(stored=stored)


def _presence_write(
    seen: dict[int, float],
    connected: set[int],
    gone: set[int],
    expected: dict[int, tuple[int, str]] | None = None,
) -> list[int]:
    """Returns the connected devices whose assignment, state or token changed."""
    from monitoring.models import Device

    close_old_connections()
    now = timezone.now()
    # One UPDATE for every device seen (readings or connection) since the last write; the
    # timestamp is at most PRESENCE_INTERVAL old, good enough for "last seen".
    ids = sorted(set(seen) | connected)
    try:
        if ids:
            Device.objects.filter(id__in=ids).update(last_seen_at=now)
        if connected:
            cache.set_many({presence_key(i): 1 for i in connected}, timeout=_presence_ttl())
        offline = gone - connected
        if offline:
            cache.delete_many([presence_key(i) for i in offline])
        if expected:
            current = {
                device_id: (patient_id, token_hash) if is_active else None
                for device_id, patient_id, token_hash, is_active in Device.objects.filter(
                    id__in=list(expected)
                ).values_list("id", "patient_id", "token_hash", "is_active")
            }
            return [i for i, wanted in expected.items() if current.get(i) != wanted]
    except Exception:
        connection.close()
        logger.exception("presence update failed")
    return []


_batchers: dict[asyncio.AbstractEventLoop, IngestBatcher] = {}


def batcher_get() -> IngestBatcher:
    """The batcher of the running event loop (one per server process), started lazily."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None or batcher._task.done():
        for old_loop in [lp for lp in _batchers if lp.is_closed()]:
            _batchers.pop(old_loop).close()
        batcher = _batchers[loop] = IngestBatcher(loop)
    return batcher


async def batcher_shutdown() -> None:
    """Close the running loop's batcher, if any (server shutdown, tests)."""
    batcher = _batchers.pop(asyncio.get_running_loop(), None)
    if batcher is not None:
        await batcher.aclose()
