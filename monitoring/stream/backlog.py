"""Readings stored while the readings stream was unreachable, and their way into it later.

The stream (Redis) is how stored readings reach the alarm evaluator; PostgreSQL is where they
are stored. When the append fails, the storing transaction goes on and writes the readings'
stream entries to ``StreamBacklog`` instead (same transaction: stored exactly when in the
stream or in the backlog), so a Redis outage does not stop storage and acks. Once Redis
answers, :func:`stream_backlog_replay` appends the backlog to the stream, oldest first, and
deletes what it appended; the evaluator then evaluates those readings like any others.

Order per patient: while this process has a backlog it defers every new reading too (no
reading of a patient overtakes an older one into the stream), until a replay found the
backlog empty. Replays lock the rows they append (``SELECT ... FOR UPDATE``, in id order), so
two processes replaying at once append in id order. A row appended whose delete did not
commit is appended again: evaluated twice, which the rules tolerate (``monitoring.stream.
entries``, "at least once").

Who replays: the ingest batcher of each server process (in its storing thread: when its live
feed is restored, and before a flush now and then while it defers, backing off), and the
alarm evaluator every rebalance, for rows that a process left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce

from common.redis_errors import REDIS_ERRORS
from monitoring.models import StreamBacklog
from monitoring.readings import StoredReading
from monitoring.stream.entries import reading_encode, stream_entries_append

logger = logging.getLogger(__name__)

# Between replay attempts from the ingest path while this process defers: from
# READINGS_BACKLOG_REPLAY_SECONDS, doubling while Redis stays away, up to
# READINGS_BACKLOG_REPLAY_MAX_SECONDS (a Redis that does not answer costs the attempt a
# timeout, paid by that flush). The live feed's recovery replays at once
# (``IngestBatcher.live_restored``).
REPLAY_ROWS = 200  # backlog rows appended per transaction


class _Deferral:
    """Whether this process defers new readings to the backlog (None: not known yet)."""

    def __init__(self) -> None:
        self.active: bool | None = None
        self.next_replay = 0.0
        self.interval = settings.READINGS_BACKLOG_REPLAY_SECONDS
        self.lock = threading.Lock()


_deferral = _Deferral()


def readings_queue(stored: Sequence[StoredReading]) -> BaseException | None:
    """Queue stored readings for alarm evaluation, inside their storing transaction: append
    them to the stream, or defer them to the backlog while Redis is away (or while this
    process still has a backlog). Returns the Redis error when this call found Redis away."""
    if not stored:
        return None
    if _deferral.active is None:
        _deferral.active = StreamBacklog.objects.exists()  # left by an earlier run
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
        _deferral.interval = settings.READINGS_BACKLOG_REPLAY_SECONDS
        _deferral.next_replay = time.monotonic() + _deferral.interval
        stream_backlog_add(stored)
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
        total += len(entries)
    if total:
        logger.warning("readings stream: %d deferred readings appended from the backlog", total)
    return total


def stream_backlog_replay_due(*, force: bool = False) -> int:
    """While this process defers: replay the backlog (when the back-off allows, or now with
    ``force``), and stop deferring once it is empty. Never raises for Redis; returns how many
    readings were appended."""
    with _deferral.lock:
        if _deferral.active is False:
            return 0
        if not force and time.monotonic() < _deferral.next_replay:
            return 0
        try:
            appended = stream_backlog_replay()
        except REDIS_ERRORS as exc:
            logger.info("readings stream still unavailable (%r); the backlog waits", exc)
            _deferral.active = True
            _deferral.next_replay = time.monotonic() + _deferral.interval
            _deferral.interval = min(
                _deferral.interval * 2, settings.READINGS_BACKLOG_REPLAY_MAX_SECONDS
            )
            return 0
        _deferral.active = False
        _deferral.interval = settings.READINGS_BACKLOG_REPLAY_SECONDS
        return appended


def stream_backlog_size() -> int:
    """How many stored readings wait in the backlog for the stream (readiness)."""
    return int(StreamBacklog.objects.aggregate(size=Coalesce(Sum("size"), 0))["size"])


def deferral_reset(*, active: bool | None = None) -> None:
    """Set this process's deferral state (tests; None: look at the backlog on the next use)."""
    _deferral.active, _deferral.next_replay, _deferral.interval = (
        active,
        0.0,
        settings.READINGS_BACKLOG_REPLAY_SECONDS,
    )
