"""The per-process ingest batcher: batch, store, broadcast, acknowledge.

Every device connection of a server process hands its parsed readings to one per-process
:class:`IngestBatcher`. A reading waits at most ``INGEST_FLUSH_INTERVAL`` seconds for others
to join its flush (less once ``INGEST_MAX_BATCH`` readings are queued); the time it spends
queued behind a flush that is still storing counts, so under load a flush starts as soon as the
storing thread is free (group commit). Each flush:

1. ONE ``readings_store`` (a multi-row ``INSERT .. ON CONFLICT DO NOTHING RETURNING``) in the
   batcher's own worker thread, which holds one database connection;
2. ONE ``reading.batch`` group message per ward with the readings that were new (duplicates
   are not re-broadcast), so dashboards see each reading once;
3. then it tells each connection what of its readings was stored, once per connection per
   flush (``StoreListener.readings_stored``: the device connection sends ONE ``ack`` for all its
   frames of the flush), or resolves the future of a caller that awaits one (HL7, tests).
   Acks so follow the commit, and a frame costs no task or future of its own.

Steps 2 and 3 (the release) run in a task of their own, flush after flush in the order of the
stores, while the next flush is already storing: the event loop's share of a flush overlaps
the database's.

A statement that fails for its data (a row the database refuses) is retried by halves
(``readings_store_isolating``): only the refused readings are left out, and each connection
learns which of its readings those are. A flush that fails because the database or the stream
is unreachable stores nothing and fails every future; the connections tell their devices.
Step 1 also appends the new readings to the readings stream, in the same transaction, for
the alarm evaluator process (``alerts.evaluator_process``): nothing about alarms runs here.

Redis away or hung (``live.feed``): the first append that fails opens the breaker of
``stream.backlog``, and from then on the stream entries go to the backlog in the storing
transaction without a Redis call, so readings are still stored and acked at once; the backlog
is replayed into the stream by a thread of its own once Redis answers. The broadcast of step 2
goes to this process's dashboards as ever (the live hub sends to Redis in the background), and
dashboards resynchronise from a snapshot when the live feed is restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.db import close_old_connections, connection

from common import metrics
from common.loops import PerLoop
from monitoring.ingest.presence import DevicePresence
from monitoring.live.events import reading_batch_events
from monitoring.live.feed import LiveFeed, live_feed
from monitoring.live.publish import live_publish
from monitoring.readings import ReadingIn, StoredReading, readings_store_isolating
from monitoring.stream.backlog import readings_queue, replayer_wake

logger = logging.getLogger(__name__)

_clock = time.perf_counter  # how long readings have waited (a test controls it)


class StoreListener(Protocol):
    """A connection told of its readings' fate after a flush (the device consumer)."""

    async def readings_stored(self, seqs: list[int | None], refused: set[int | None]) -> None:
        """``seqs`` (in order, each once) were handled: stored, except ``refused``."""

    async def readings_failed(self, seqs: list[int | None]) -> None:
        """Nothing of ``seqs`` was stored (the database or the stream is unreachable)."""


@dataclass(slots=True)
class _Entry:
    readings: list[ReadingIn]
    wards: dict[int, int | None]
    future: asyncio.Future | None  # or a listener, told after the flush
    submitted: float = 0.0  # _clock() at submit: how long it has waited, the ack latency metric
    path: str = "ws"  # the ingest path, for the metrics (common.metrics.INGEST_PATHS)
    listener: StoreListener | None = None


@dataclass(slots=True)
class _Release:
    """A stored flush waiting for its broadcast and acks (or a failed one, for its failures)."""

    entries: list[_Entry]
    stored: list[StoredReading] = field(default_factory=list)
    refused: list[ReadingIn] = field(default_factory=list)
    failure: BaseException | None = None


class IngestBatcher:
    """Collects readings from every device connection of this process and flushes them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pending: list[_Entry] = []
        self._pending_count = 0
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        # One thread = one database connection (and one Redis client) for the hot path.
        self._store_executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-store")
        # Stored flushes wait here for their broadcast and acks, in the order of their stores.
        self._releases: asyncio.Queue[_Release] = asyncio.Queue()
        self._release_task = loop.create_task(self._release_run(), name="ingest-release")
        self._task = loop.create_task(self._run(), name="ingest-batcher")
        self.feed = live_feed(loop)
        self.feed.listen(self)
        # Device presence rides along: readings mark their devices seen (Redis away: the
        # database part only, the keys are written again once it is back).
        self.presence = DevicePresence(loop, keys=lambda: not self.feed.degraded)
        self.flushes = 0
        self.stored_count = 0
        self._max_batch = settings.INGEST_MAX_BATCH

    # Called by device connections (on the event loop).
    def submit(
        self, readings: list[ReadingIn], wards: dict[int, int | None], *, path: str = "ws"
    ) -> asyncio.Future:
        """Queue readings; the future resolves after they are durably stored, to the list of
        those readings that the database refused (not stored; usually empty), or fails when
        nothing could be stored."""
        future = self.loop.create_future()
        if not readings:
            future.set_result([])
            return future
        self._queue(_Entry(readings, wards, future, _clock(), path))
        return future

    def submit_for(
        self, listener: StoreListener, readings: list[ReadingIn], wards: dict[int, int | None]
    ) -> None:
        """Queue a connection's readings (not empty); ``listener`` is told after the flush."""
        self._queue(_Entry(readings, wards, None, _clock(), "ws", listener))

    def _queue(self, entry: _Entry) -> None:
        readings = entry.readings
        self._pending.append(entry)
        self._pending_count += len(readings)
        now = time.time()
        seen = self.presence.seen
        for reading in readings:
            if reading.device_id is not None:
                seen[reading.device_id] = now
        self._wakeup.set()
        if self._pending_count >= self._max_batch:
            self._full.set()

    # The live feed (``live.feed``) tells the batcher too.
    async def live_degraded(self, feed: LiveFeed) -> None:
        pass

    async def live_restored(self, feed: LiveFeed) -> None:
        """Redis is back: the backlog's replayer tries now (in its own thread; the storing
        thread appends again once the backlog is empty, ``stream.backlog``)."""
        replayer_wake()

    async def _run(self) -> None:
        interval = settings.INGEST_FLUSH_INTERVAL
        while True:
            try:
                timeout = self.presence.due_in()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
                if self._pending:
                    # A reading waits at most ``interval`` from its arrival for company; time
                    # spent while the previous flush was storing counts, so under load the
                    # next flush starts as soon as the storing thread is free.
                    linger = interval - (_clock() - self._pending[0].submitted)
                    if linger > 0 and not self._full.is_set():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._full.wait(), linger)
                    await self._flush()
                self.presence.flush_if_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("ingest batcher loop error")
                await asyncio.sleep(interval)

    async def _flush(self) -> None:
        """Store what is queued; its release (broadcast, then acks) is queued for the
        releasing task, so the next store overlaps it."""
        entries, self._pending = self._pending, []
        self._pending_count = 0
        self._wakeup.clear()
        self._full.clear()
        # One store per ingest path (a process normally has one: web "ws", the HL7 listener "hl7").
        paths = dict.fromkeys(entry.path for entry in entries)
        for path in paths:
            await self._store([e for e in entries if e.path == path], path)

    async def _store(self, entries: list[_Entry], path: str) -> None:
        readings = [r for entry in entries for r in entry.readings]
        wards: dict[int, int | None] = {}
        for entry in entries:
            wards.update(entry.wards)
        try:
            stored, refused, stream_error = await self.loop.run_in_executor(
                self._store_executor, _store_in_thread, readings, wards, path
            )
        except Exception as exc:
            logger.exception("storing %d readings failed", len(readings))
            self._releases.put_nowait(_Release(entries, failure=exc))
            return
        self.flushes += 1
        self.stored_count += len(stored)
        if stream_error is not None:
            self.feed.report("readings stream", stream_error)
        self._releases.put_nowait(_Release(entries, stored=stored, refused=refused))

    async def _release_run(self) -> None:
        """Release stored flushes in the order they were stored."""
        while True:
            release = await self._releases.get()
            try:
                await self._release(release)
            except Exception:
                logger.exception("releasing a flush failed")
            finally:
                self._releases.task_done()

    async def _release(self, release: _Release) -> None:
        entries = release.entries
        if release.failure is not None:
            for entry in entries:
                if entry.future is not None and not entry.future.done():
                    entry.future.set_exception(release.failure)
            for listener, seqs in _seqs_by_listener(entries).items():
                await _tell(listener.readings_failed(seqs))
            return
        # Broadcast before acking so an acked reading is already on its way to dashboards
        # (this process's dashboards have it when this returns; the live hub delivers to them
        # with Redis away too).
        await live_publish(reading_batch_events(release.stored))
        refused_ids = {id(r) for r in release.refused}
        for entry in entries:
            if entry.future is not None and not entry.future.done():
                entry.future.set_result([r for r in entry.readings if id(r) in refused_ids])
        for listener, seqs in _seqs_by_listener(entries).items():
            refused_seqs = (
                {
                    r.seq
                    for e in entries
                    if e.listener is listener
                    for r in e.readings
                    if id(r) in refused_ids
                }
                if refused_ids
                else set()
            )
            await _tell(listener.readings_stored(seqs, refused_seqs))
        # --- metrics: the ack latency of each frame of the flush
        released = _clock()
        for entry in entries:
            metrics.INGEST_ACK_SECONDS.observe(released - entry.submitted)

    async def drain(self) -> None:
        """Flush everything queued and release it (tests, shutdown)."""
        if self._pending:
            await self._flush()
        await self._releases.join()

    async def aclose(self) -> None:
        """Stop: flush what is queued, then release the worker threads' DB connections."""
        self._task.cancel()
        self.feed.unlisten(self)
        await self.drain()
        self._release_task.cancel()
        await self.loop.run_in_executor(self._store_executor, _connection_close)
        self._store_executor.shutdown(wait=False)
        await self.presence.aclose()

    def close(self) -> None:
        self._task.cancel()
        self._release_task.cancel()
        self.feed.unlisten(self)
        self._store_executor.submit(_connection_close)
        self._store_executor.shutdown(wait=False)
        self.presence.close()


def _seqs_by_listener(entries: list[_Entry]) -> dict[StoreListener, list[int | None]]:
    """Each listener's seqs of this flush, in order, each once (one ack per connection)."""
    found: dict[StoreListener, dict[int | None, None]] = {}
    for entry in entries:
        if entry.listener is not None:
            seqs = found.setdefault(entry.listener, {})
            for reading in entry.readings:
                seqs[reading.seq] = None
    return {listener: list(seqs) for listener, seqs in found.items()}


async def _tell(reply: Awaitable[None]) -> None:
    try:
        await reply
    except Exception:
        # A connection that closed meanwhile; the others must still hear of their readings.
        logger.warning("telling a connection of its readings failed", exc_info=True)


def _connection_close() -> None:
    connection.close()  # the calling thread's own connection


def _store_in_thread(
    readings: list[ReadingIn], wards: dict[int, int | None], path: str
) -> tuple[list[StoredReading], list[ReadingIn], BaseException | None]:
    """Store (and queue for evaluation) in the storing thread; returns what was stored, what
    the database refused, and the Redis error if the stream was found away by this flush."""
    close_old_connections()
    errors: list[BaseException] = []

    def queue(stored: list[StoredReading]) -> None:
        error = readings_queue(stored)
        if error is not None:
            errors.append(error)

    try:
        stored, refused = readings_store_isolating(
            readings=readings, path=path, wards=wards, queue=queue
        )
    except Exception:
        # Drop a broken connection so the next flush reconnects.
        connection.close()
        raise
    return stored, refused, errors[0] if errors else None


_batchers: PerLoop[IngestBatcher] = PerLoop(
    IngestBatcher, close=IngestBatcher.close, stale=lambda batcher: batcher._task.done()
)


def batcher_get() -> IngestBatcher:
    """The batcher of the running event loop (one per server process), started lazily."""
    return _batchers.get()


async def batcher_shutdown() -> None:
    """Close the running loop's batcher, if any (server shutdown, tests)."""
    batcher = _batchers.pop(asyncio.get_running_loop())
    if batcher is not None:
        await batcher.aclose()
