"""Readings stored while the readings stream was unreachable, and their way into it later.

The stream (Redis) is how stored readings reach the alarm evaluator; PostgreSQL is where they
are stored. When the append fails, the storing transaction goes on and writes the readings'
stream entries to ``StreamBacklog`` instead (same transaction: stored exactly when in the
stream or in the backlog), so a Redis outage does not stop storage and acks.

The storing path never waits for a Redis that is away: a breaker per process. The first
append that fails (refused, or no answer within ``REDIS_APPEND_TIMEOUT``, tried once) opens
it; from then on every new reading goes straight to the backlog, without a Redis call, so a
hung Redis costs the acks of one flush at most that timeout. A replayer thread of the process
(never the storing thread) probes Redis every ``READINGS_BACKLOG_REPLAY_SECONDS`` (``PING``,
``REDIS_CHECK_TIMEOUT``); once it answers, the replayer appends the backlog to the stream,
oldest first, deleting what it appended, and says so when it found the backlog empty. The
storing path closes the breaker at its next flush, inside that flush's transaction, if the
backlog is still empty then (rows deferred since the replayer looked keep it open for another
pass); the evaluator then evaluates those readings like any others.

Order per patient: while the breaker is open every new reading is deferred too (no reading of
a patient overtakes an older one into the stream); it closes only on a backlog seen empty by
the flush that appends next, and a server process stores in one thread. Replays lock the rows
they append (``SELECT ... FOR UPDATE``, in id order), so two processes replaying at once append
in id order. A row appended whose delete did not commit is appended again, and an append that
timed out may still be carried out by Redis once it answers while its readings were deferred:
such readings are evaluated twice, which the rules tolerate (``monitoring.stream.entries``,
"at least once"). Stored, and acked, they are once.

Who replays: the replayer thread of each server process (woken at once when the live feed is
restored), and the alarm evaluator every rebalance, for rows that a process left behind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from common import redis_clients
from common.redis_errors import REDIS_ERRORS
from monitoring.models import StreamBacklog, StreamReplay
from monitoring.readings import StoredReading
from monitoring.stream.entries import (
    entry_time,
    partition_of,
    reading_encode,
    stream_entries_append,
)

logger = logging.getLogger(__name__)

REPLAY_ROWS = 200  # backlog rows appended per transaction
# How long the late appends are remembered (StreamReplay); an alarm evaluator catches up as
# far back (alerts.checkpoints.CATCH_UP_MAX_SECONDS).
REPLAYS_KEPT_SECONDS = 3600.0


class _Breaker:
    """Whether this process sends new readings to the backlog (open), and its replayer."""

    def __init__(self) -> None:
        self.active: bool | None = None  # open; None: not known yet (look at the backlog)
        self.drained = threading.Event()  # the replayer found the backlog empty, Redis up
        self.wake = threading.Event()
        self.lock = threading.Lock()  # guards the replayer thread's start and end
        self.thread: threading.Thread | None = None
        self.replayer = True  # start a replayer thread (tests drive the passes themselves)


_deferral = _Breaker()


def readings_queue(stored: Sequence[StoredReading]) -> BaseException | None:
    """Queue stored readings for alarm evaluation, inside their storing transaction: append
    them to the stream, or defer them to the backlog while the breaker is open. Returns the
    Redis error when this call found Redis away (and opened the breaker)."""
    if not stored:
        return None
    if _deferral.active is None:
        _deferral.active = StreamBacklog.objects.exists()  # left by an earlier run
        if _deferral.active:
            _replayer_start()
    if _deferral.active and _deferral.drained.is_set():
        _deferral.drained.clear()
        if not StreamBacklog.objects.exists():  # nothing deferred since the replay
            _deferral.active = False
            logger.warning("readings stream: appending again, the backlog is empty")
    if _deferral.active:
        stream_backlog_add(stored)
        return None
    try:
        stream_entries_append([reading_encode(reading) for reading in stored])
    except REDIS_ERRORS as exc:
        logger.error(
            "readings stream unavailable (%r): %d readings deferred to the backlog",
            exc,
            len(stored),
        )
        _deferral.active = True
        _deferral.drained.clear()
        stream_backlog_add(stored)
        _replayer_start()
        return exc
    return None


def stream_backlog_add(stored: Sequence[StoredReading]) -> None:
    StreamBacklog.objects.create(
        entries=[reading_encode(reading) for reading in stored], size=len(stored)
    )


def stream_backlog_replay() -> int:
    """Append the backlog to the stream, oldest first, deleting what was appended; returns how
    many readings were appended. Raises the Redis error if Redis is still away (what was not
    appended stays)."""
    total = 0
    while True:
        with transaction.atomic():
            rows = list(StreamBacklog.objects.select_for_update().order_by("id")[:REPLAY_ROWS])
            if not rows:
                break
            entries = [entry for row in rows for entry in row.entries]
            stream_entries_append(entries)
            StreamBacklog.objects.filter(id__in=[row.id for row in rows]).delete()
            _replays_note(entries)
        total += len(entries)
    if total:
        logger.warning("readings stream: %d deferred readings appended from the backlog", total)
    return total


def _replays_note(entries: Sequence[Mapping[str, int | str]]) -> None:
    """Note per partition the received times of the readings just appended late, and forget
    the notes older than ``REPLAYS_KEPT_SECONDS`` (``StreamReplay`` says why)."""
    received: dict[int, list[int]] = {}
    for entry in entries:
        received.setdefault(partition_of(int(entry["patient"])), []).append(
            int(entry["received_us"])
        )
    now = timezone.now()
    StreamReplay.objects.bulk_create(
        StreamReplay(
            appended_at=now,
            partition=partition,
            received_from=entry_time(min(times)),
            received_until=entry_time(max(times)),
        )
        for partition, times in received.items()
    )
    StreamReplay.objects.filter(
        appended_at__lt=now - timedelta(seconds=REPLAYS_KEPT_SECONDS)
    ).delete()


def stream_backlog_replay_due() -> int:
    """One pass of the replayer: when Redis answers a probe, replay the backlog, and once it
    is empty let the storing path close the breaker. Never raises for Redis; returns how many
    readings were appended."""
    try:
        redis_clients.redis_client(timeout=settings.REDIS_CHECK_TIMEOUT, retries=False).ping()
        appended = stream_backlog_replay()
    except REDIS_ERRORS as exc:
        logger.info("readings stream still unavailable (%r); the backlog waits", exc)
        return 0
    _deferral.drained.set()
    return appended


def replayer_wake() -> None:
    """Replay now rather than at the next pass (the live feed found Redis back)."""
    _deferral.wake.set()


def _replayer_start() -> None:
    with _deferral.lock:
        if _deferral.thread is not None or not _deferral.replayer:
            return
        _deferral.thread = threading.Thread(
            target=_replayer_run, name="readings-backlog-replay", daemon=True
        )
        _deferral.thread.start()


def _replayer_run() -> None:
    """Replay passes while the breaker is open (its own database connection and Redis calls:
    the storing thread never waits for them)."""
    try:
        while True:
            with _deferral.lock:
                if _deferral.active is not True or not _deferral.replayer:
                    _deferral.thread = None
                    return
            _deferral.wake.wait(settings.READINGS_BACKLOG_REPLAY_SECONDS)
            _deferral.wake.clear()
            close_old_connections()
            try:
                stream_backlog_replay_due()
            except Exception:
                connection.close()
                logger.exception("replaying the readings backlog failed; retrying")
    finally:
        connection.close()  # this thread's own connection


def stream_backlog_size() -> int:
    """How many stored readings wait in the backlog for the stream (readiness)."""
    return int(StreamBacklog.objects.aggregate(size=Coalesce(Sum("size"), 0))["size"])


def deferral_reset(*, active: bool | None = None, replayer: bool = True) -> None:
    """Set this process's breaker (tests; None: look at the backlog on the next use) and stop
    its replayer; ``replayer=False``: start none (the test calls
    :func:`stream_backlog_replay_due` itself)."""
    with _deferral.lock:
        thread, _deferral.replayer = _deferral.thread, False
    _deferral.wake.set()
    if thread is not None:
        thread.join(10)
    _deferral.wake.clear()
    _deferral.drained.clear()
    _deferral.active, _deferral.replayer = active, replayer
