"""The alarm evaluator's reader of the readings stream (``monitoring.stream.entries``): partition
leases, at-least-once delivery in order per patient.

Delivery: at least once, in order per patient
    A partition is read by one evaluator at a time, the holder of its lease. The handler gets
    each partition's entries in stream order and they are acknowledged (``XACK``) only after it
    returned. If it raises, the entries stay pending and are read again before anything newer
    from that partition, so nothing overtakes them. An evaluator that takes a partition over
    first claims (``XAUTOCLAIM``) everything pending in it, whoever it was delivered to: the
    lease makes it the only reader, and waiting for those entries to become idle would let
    newer ones overtake them. Afterwards it reclaims entries idle longer than ``min_idle_ms``
    now and then, a backstop for entries an evaluator read just as it lost its lease. A reading
    may so be evaluated twice; the rules tolerate that (one open alert per patient and kind, and
    a repeat at the same priority changes nothing).

Partition leases
    A lease is a redis-py ``Lock`` on ``{prefix}readings-lease:{partition}`` whose token is the
    consumer name: ``SET NX PX`` to take it, a compare-and-``PEXPIRE`` to renew it, a
    compare-and-``DEL`` to release it. Live evaluators are a sorted set
    ``{prefix}readings-evaluators`` of consumer names scored with their heartbeat's deadline in
    Redis's own clock (``TIME``), so evaluators on machines with different clocks agree, and so
    they can be counted without scanning keys. Each evaluator holds at most its fair share,
    ``ceil(N / live evaluators)``: one that holds more gives the highest partitions back, so a
    new evaluator gets some; a dead evaluator's leases and heartbeat expire after ``lease_ms``
    and the others take its partitions. While :meth:`StreamReader.run` runs, a background
    thread renews the leases, so a slow handler keeps its partitions and only a dead or frozen
    process loses them.

Why this is written here: Redis consumer groups hand a stream's entries to whichever consumer
asks first, which keeps no order per patient once two consumers read one stream; assigning
partitions to consumers (what Kafka's group coordinator does) is not part of Redis, and the
kept libraries (redis-py, walrus, Celery/kombu) offer consumer groups or queues but not
partition leases with takeover. The building blocks are redis-py's (``Lock``, the stream
commands); what is written here is the assignment rule and the order of the steps.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any, Protocol, cast

import redis
from django.conf import settings
from redis.exceptions import LockError
from redis.lock import Lock

from monitoring.readings import StoredReading
from monitoring.stream.entries import (
    GROUP,
    entry_order,
    entry_readings,
    evaluators_key,
    lease_key,
    partition_key,
    partitions,
    redis_client,
    server_ms,
    text,
)

logger = logging.getLogger(__name__)

READ_COUNT = 50  # entries (each a flush's readings of the partition) per partition per read

Handler = Callable[[list[StoredReading]], object]


class Progress(Protocol):
    """Where a reader reports its progress, and where it learns what Redis forgot
    (``alerts.checkpoints.EvaluationProgress``)."""

    def acknowledged(self, last_ids: dict[int, str]) -> None:
        """Entries up to these ids (per partition) are evaluated and acknowledged."""

    def groups_created(self, partitions: Iterable[int]) -> object:
        """The consumer groups of ``partitions`` were missing and were created now."""

    def groups_went_back(self, positions: dict[int, str]) -> list[int]:
        """The partitions whose group's last delivered id (``positions``) stands before what
        was acknowledged of them: Redis went back (restored from an older snapshot)."""
        ...

    def delivered_again(self, partitions: list[int]) -> object:
        """``partitions`` delivered, as new, entries this reader had acknowledged already:
        Redis went back while the reader held them."""

    def catch_up(self, owned: Iterable[int]) -> object:
        """Before ``owned`` partitions are read: evaluate what the stream lost of them."""


# --- The reader -----------------------------------------------------------------------------


def consumer_name_default() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamReader:
    """One evaluator's reader of the readings stream (the module docstring says how).

    ``handler(readings)`` is called once per read with the new entries of every partition
    read (each partition's in stream order; entries pending again after a failure, once per
    partition); it must have committed its writes when it returns, because the entries are
    then acknowledged. Use it as a
    context manager (or ``start()`` / ``close()``) and call ``rebalance()`` and ``poll()``, or
    ``run()`` them until stopped.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        consumer: str,
        group: str = GROUP,
        lease_ms: int | None = None,
        min_idle_ms: int | None = None,
        count: int = READ_COUNT,
        retry_seconds: float = 1.0,
        progress: Progress | None = None,
    ) -> None:
        self.handler = handler
        self.progress = progress
        self.consumer = consumer
        self.group = group
        self.lease_ms = int(lease_ms or settings.READINGS_STREAM_LEASE_MS)
        self.min_idle_ms = self.lease_ms if min_idle_ms is None else min_idle_ms
        self.count = count
        self.entries_acknowledged = 0  # by the last poll
        self.retry_seconds = retry_seconds
        self.pace_seconds = float(settings.READINGS_STREAM_PACE_SECONDS)
        self.partitions = partitions()
        self.client = redis_client()
        self._leases: dict[int, Lock] = {}
        # Guards _leases: the renewing thread drops leases it lost.
        self._lock = threading.Lock()
        # Partitions with entries pending for this consumer, read before anything new.
        self._backlog: set[int] = set()
        self._retry_at: dict[int, float] = {}
        self._announced: list[int] | None = None
        # The last entry this reader acknowledged per partition, as ``entry_order`` has it.
        self._acknowledged: dict[int, tuple[int, int]] = {}

    # --- Lifecycle ---

    def __enter__(self) -> StreamReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Create the consumer group where missing and take this evaluator's partitions."""
        self.groups_create()
        self.rebalance()

    def close(self) -> None:
        """Give the leases back and leave the live set (a clean stop: others take over now)."""
        with self._lock:
            for lock in self._leases.values():
                with suppress(LockError, redis.RedisError):
                    lock.release()
            self._leases.clear()
        with suppress(redis.RedisError):
            self.client.zrem(evaluators_key(), self.consumer)
        logger.info("consumer %s released its partitions", self.consumer)

    def groups_create(self) -> list[int]:
        """Create the consumer group of each partition where it is missing; returns the
        partitions whose group was created now (told to ``progress``: Redis forgot them, or
        they were never read)."""
        pipe = self.client.pipeline(transaction=False)
        for partition in range(self.partitions):
            pipe.xgroup_create(partition_key(partition), self.group, id="0", mkstream=True)
        created = []
        for partition, result in enumerate(pipe.execute(raise_on_error=False)):
            if isinstance(result, Exception):
                if "BUSYGROUP" not in str(result):
                    raise result
            else:
                created.append(partition)
        if created and self.progress is not None:
            self.progress.groups_created(created)
        return created

    @property
    def owned(self) -> list[int]:
        with self._lock:
            return sorted(self._leases)

    @property
    def has_backlog(self) -> bool:
        return bool(self._backlog & set(self.owned))

    # --- Leases ---

    def renew(self) -> int:
        """Heartbeat and renew the leases held (any thread); returns how many evaluators live."""
        with self._lock:
            now = server_ms(self.client)
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(evaluators_key(), {self.consumer: now + self.lease_ms})
            pipe.zremrangebyscore(evaluators_key(), "-inf", now)
            pipe.zcard(evaluators_key())
            live = int(pipe.execute()[-1])
            for partition, lock in list(self._leases.items()):
                try:
                    lock.reacquire()
                except LockError:
                    del self._leases[partition]
                    logger.warning("consumer %s lost partition %d", self.consumer, partition)
            return live

    def rebalance(self) -> list[int]:
        """Renew; give back leases above the fair share, take free ones up to it; returns the
        partitions held. A partition taken over is first claimed whole (module docstring)."""
        live = self.renew()
        fair = math.ceil(self.partitions / max(live, 1))
        with self._lock:
            for partition in sorted(self._leases)[fair:]:  # the highest go back
                with suppress(LockError):
                    self._leases.pop(partition).release()
            held = set(self._leases)
            for partition in range(self.partitions):
                if len(self._leases) >= fair:
                    break
                if partition in self._leases:
                    continue
                lock = self.client.lock(
                    lease_key(partition), timeout=self.lease_ms / 1000, thread_local=False
                )
                if not lock.acquire(blocking=False, token=self.consumer):
                    continue
                try:
                    self._takeover(partition)
                except redis.RedisError:
                    # Not read before its pending entries are ours: give it back, retry later.
                    with suppress(LockError, redis.RedisError):
                        lock.release()
                    raise
                self._leases[partition] = lock
            for partition in held & set(self._leases):
                self._claim(partition, min_idle_ms=self.min_idle_ms)
            owned = sorted(self._leases)
        if owned != self._announced:
            self._announced = owned
            logger.info(
                "consumer %s owns partitions %s of %d (%d live evaluators)",
                self.consumer,
                owned,
                self.partitions,
                live,
            )
        if self.progress is not None:
            self._went_back_check(owned)
            self.progress.catch_up(owned)
        return owned

    def _went_back_check(self, owned: list[int]) -> None:
        """A group that stands before what was acknowledged of its partition (Redis restored
        from an older snapshot) would deliver old entries again, out of order, and the entries
        appended after the snapshot are gone: start the group afresh at the stream's end (its
        pending entries with it) and let the checkpoint's catch-up evaluate, from the database,
        what was stored since."""
        assert self.progress is not None
        if not owned:
            return
        pipe = self.client.pipeline(transaction=False)
        for partition in owned:
            pipe.xinfo_groups(partition_key(partition))
        positions = {}
        for partition, groups in zip(owned, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(groups, Exception):
                continue  # no stream (yet): nothing delivered, nothing to compare
            for group in cast("list[dict[str, Any]]", groups):
                if text(group["name"]) == self.group:
                    positions[partition] = text(group["last-delivered-id"])
        for partition in self.progress.groups_went_back(positions):
            self._group_restart(partition)

    def _group_restart(self, partition: int) -> None:
        """Start the partition's group afresh at the stream's end, its pending entries with it
        (what it lost is evaluated from the database by the checkpoint's catch-up)."""
        key = partition_key(partition)
        pipe = self.client.pipeline(transaction=True)
        pipe.xgroup_destroy(key, self.group)
        pipe.xgroup_create(key, self.group, id="$", mkstream=True)
        pipe.execute()
        self._backlog.discard(partition)
        self._acknowledged.pop(partition, None)

    def _delivered_again(self, batches: dict[int, list[tuple[bytes, dict[bytes, bytes]]]]) -> None:
        """New entries (``>``) come after the group's last delivered id, so one that this
        reader acknowledged already means Redis went back since (restored from an older
        snapshot, failed over to a replica that lagged): without waiting for the next
        rebalance, its partition is reset (logged, counted), its group started afresh, and
        what was stored since the checkpoint is evaluated from the database. The old entries
        are dropped from ``batches`` unevaluated."""
        if self.progress is None:
            return
        back = sorted(
            partition
            for partition, entries in batches.items()
            if partition in self._acknowledged
            and entry_order(entries[0][0]) <= self._acknowledged[partition]
        )
        if not back:
            return
        self.progress.delivered_again(back)
        for partition in back:
            del batches[partition]
            self._group_restart(partition)
        self.progress.catch_up(back)

    def _takeover(self, partition: int) -> None:
        self._claim(partition, min_idle_ms=0)
        # Everything pending is now this consumer's: forget the others (a killed evaluator's
        # name would otherwise stay in the group for ever). One that reads again comes back.
        key = partition_key(partition)
        for info in cast("list[dict[str, Any]]", self.client.xinfo_consumers(key, self.group)):
            name = text(info["name"])
            if name != self.consumer and int(info["pending"]) == 0:
                self.client.xgroup_delconsumer(key, self.group, name)

    def _claim(self, partition: int, *, min_idle_ms: int) -> int:
        key, start, claimed = partition_key(partition), "0-0", 0
        while True:
            cursor, entries, *_deleted = cast(
                "list[Any]",
                self.client.xautoclaim(
                    key, self.group, self.consumer, min_idle_ms, start_id=start, count=self.count
                ),
            )
            claimed += len(entries)
            if text(cursor) == "0-0":
                break
            start = cursor
        if claimed:
            self._backlog.add(partition)
            logger.info(
                "consumer %s claimed %d pending entries of partition %d",
                self.consumer,
                claimed,
                partition,
            )
        return claimed

    # --- Reading ---

    def poll(self, *, block_ms: int | None = None, raise_errors: bool = False) -> int:
        """Hand the next entries of each partition held to the handler; returns how many readings
        their acknowledged entries held.

        Partitions with entries pending for this consumer are read from those first; the others
        wait up to ``block_ms`` for new entries (None: no waiting). A handler that raises is
        logged (raised again with ``raise_errors``) and its entries stay pending, retried after
        ``retry_seconds``.
        """
        self.entries_acknowledged = 0  # by this poll (an entry may hold no reading to count)
        owned = set(self.owned)
        self._backlog &= owned
        now = time.monotonic()
        due = sorted(p for p in self._backlog if self._retry_at.get(p, 0.0) <= now)
        fresh = sorted(owned - self._backlog)
        if due:
            batches = self._read(dict.fromkeys(due, "0"), block_ms=None)
            for partition in due:
                if len(batches.get(partition, ())) < self.count:
                    self._backlog.discard(partition)  # the last of its pending entries
        elif fresh:
            batches = self._read(dict.fromkeys(fresh, ">"), block_ms=block_ms)
            return self._handle_together(batches, raise_errors=raise_errors)
        else:
            if block_ms:
                time.sleep(block_ms / 1000)
            return 0
        # Entries handed over before and not acknowledged: partition by partition, so one
        # that keeps failing holds back only its own.
        handled, failure = 0, None
        for partition, entries in sorted(batches.items()):
            try:
                handled += self._handle(partition, entries)
            except Exception as exc:  # the other partitions go on
                self._backlog.add(partition)
                self._retry_at[partition] = time.monotonic() + self.retry_seconds
                logger.exception(
                    "partition %d: %d entries not evaluated; they stay pending",
                    partition,
                    len(entries),
                )
                failure = failure or exc
        if failure is not None and raise_errors:
            raise failure
        return handled

    def _read(
        self, ids: dict[int, str], *, block_ms: int | None
    ) -> dict[int, list[tuple[bytes, dict[bytes, bytes]]]]:
        by_key = {partition_key(p): p for p in ids}
        response = cast(
            "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None",
            self.client.xreadgroup(
                self.group,
                self.consumer,
                {partition_key(p): i for p, i in ids.items()},
                count=self.count,
                block=block_ms or None,  # BLOCK 0 would wait for ever
            ),
        )
        return {by_key[text(key)]: entries for key, entries in response or []}

    def _handle_together(
        self, batches: dict[int, list[tuple[bytes, dict[bytes, bytes]]]], *, raise_errors: bool
    ) -> int:
        """New entries of every partition read: one handler call (a batch's fixed costs, its
        queries and Redis round trips, are paid once per read rather than per partition),
        then the acknowledgements in one round trip. When the handler raises, the entries of
        every partition read stay pending and are retried partition by partition."""
        batches = {partition: entries for partition, entries in batches.items() if entries}
        self._delivered_again(batches)
        if not batches:
            return 0
        readings = [
            reading
            for partition in sorted(batches)
            for reading in self._decode(partition, batches[partition])
        ]
        try:
            if readings:
                self.handler(readings)
        except Exception:
            retry_at = time.monotonic() + self.retry_seconds
            for partition in batches:
                self._backlog.add(partition)
                self._retry_at[partition] = retry_at
            logger.exception(
                "partitions %s: %d entries not evaluated; they stay pending",
                sorted(batches),
                sum(len(entries) for entries in batches.values()),
            )
            if raise_errors:
                raise
            return 0
        pipe = self.client.pipeline(transaction=False)
        for partition, entries in batches.items():
            pipe.xack(partition_key(partition), self.group, *[e[0] for e in entries])
        pipe.execute()
        for partition in batches:
            self._retry_at.pop(partition, None)
        self._acknowledged_up_to({p: e[-1][0] for p, e in batches.items()})
        self.entries_acknowledged += sum(len(entries) for entries in batches.values())
        return len(readings)

    def _acknowledged_up_to(self, last_ids: dict[int, bytes]) -> None:
        for partition, entry_id in last_ids.items():
            order = entry_order(entry_id)
            if order > self._acknowledged.get(partition, (0, 0)):
                self._acknowledged[partition] = order
        if self.progress is not None:
            self.progress.acknowledged({p: text(i) for p, i in last_ids.items()})

    def _decode(
        self, partition: int, entries: list[tuple[bytes, dict[bytes, bytes]]]
    ) -> list[StoredReading]:
        readings: list[StoredReading] = []
        for entry_id, fields in entries:
            if not fields:
                # Pending, but trimmed away (the retention) before it was evaluated.
                logger.error("partition %d: entry %s was trimmed unevaluated", partition, entry_id)
                continue
            try:
                readings.extend(entry_readings(fields))
            except (KeyError, ValueError):
                logger.error(
                    "partition %d: entry %s is not a reading: %r", partition, entry_id, fields
                )
        return readings

    def _handle(
        self,
        partition: int,
        entries: list[tuple[bytes, dict[bytes, bytes]]],
    ) -> int:
        if not entries:
            return 0
        readings = self._decode(partition, entries)
        if readings:
            self.handler(readings)
        self.client.xack(partition_key(partition), self.group, *[e[0] for e in entries])
        self._retry_at.pop(partition, None)
        self._acknowledged_up_to({partition: entries[-1][0]})
        self.entries_acknowledged += len(entries)
        return len(readings)

    # --- Running ---

    def run(
        self,
        *,
        stop: threading.Event,
        block_ms: int = 1000,
        every_rebalance: Callable[[], object] | None = None,
    ) -> None:
        """Read until ``stop`` is set, then release the leases; rebalances every third of a
        lease (then calls ``every_rebalance``), and a background thread renews the leases
        meanwhile."""
        interval = self.lease_ms / 3000
        renewer = threading.Thread(
            target=self._renew_until, args=(stop, interval), name="readings-leases", daemon=True
        )
        self.start()
        renewer.start()
        next_rebalance = time.monotonic() + interval
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_rebalance:
                        self.rebalance()
                        next_rebalance = time.monotonic() + interval
                        if every_rebalance is not None:
                            every_rebalance()
                    started = time.monotonic()
                    if self.poll(block_ms=block_ms) and self.pace_seconds:
                        # Entries keep coming: let a pace's worth gather, so each batch's
                        # fixed cost (its queries) is paid a few times a second, not per entry.
                        stop.wait(max(0.0, self.pace_seconds - (time.monotonic() - started)))
                except redis.RedisError as exc:
                    logger.error("readings stream: %r; retrying", exc)
                    # Entries read or handled but not acknowledged may be pending for us:
                    # read the pending ones again before anything new.
                    self._backlog.update(self.owned)
                    if "NOGROUP" in str(exc):  # Redis forgot the stream (restart, flush)
                        with suppress(redis.RedisError):
                            self.groups_create()
                        # Rebalance (and catch up on what was lost) before reading again.
                        next_rebalance = 0.0
                    stop.wait(self.retry_seconds)
        finally:
            stop.set()
            renewer.join()
            self.close()

    def _renew_until(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                self.renew()
            except redis.RedisError as exc:
                logger.error("renewing the partition leases failed: %r", exc)


def drain(handler: Handler, *, consumer: str | None = None, group: str = GROUP) -> int:
    """Evaluate everything in the stream now, in this process, until nothing is left; returns
    how many readings the acknowledged entries held.

    Raises what the handler raises (its entries stay pending). For tests and
    ``alarms_evaluate --once``; it reads the partitions it can lease, all of them when no
    evaluator runs.
    """
    total = 0
    with StreamReader(
        handler, consumer=consumer or f"drain-{consumer_name_default()}", group=group
    ) as reader:
        while (
            (handled := reader.poll(raise_errors=True))
            or reader.entries_acknowledged
            or (reader.has_backlog)
        ):
            total += handled
    return total
