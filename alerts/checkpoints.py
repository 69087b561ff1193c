"""Evaluation progress kept in the database: what the alarm evaluators have evaluated, per
partition of the readings stream, so that readings Redis lost before they were evaluated are
evaluated all the same.

Checkpoints
    After each batch it acknowledged, an evaluator notes per partition the ``received_at`` of
    the newest reading evaluated and the last stream entry acknowledged; it writes them to
    ``EvaluationCheckpoint`` (one statement for all its partitions) at most every
    ``CHECKPOINT_SECONDS``, not per reading or per batch.

A vanished consumer group
    Only evaluators create the consumer group of a partition (``alerts.stream_reader``). An
    evaluator that had to create one for a partition that has a checkpoint knows Redis forgot
    the partition (restarted empty, flushed, the stream deleted): the entries not yet
    evaluated went with it. It logs an ERROR, counts ``monitor_evaluation_stream_resets_total``
    and marks the checkpoint ``reset_pending``.

A consumer group that went back
    A group whose last delivered id stands before the last entry acknowledged of its partition
    (Redis restored from an older snapshot, or failed over to a replica that lagged) would
    deliver old entries again, out of order, and the entries appended after the snapshot are
    gone. An evaluator checks the partitions it takes at each rebalance (``groups_went_back``),
    and its reader sees it at the next read of a partition it holds, when the stream hands it,
    as new, an entry it acknowledged already (``delivered_again``): it logs an ERROR, counts
    the same metric, marks the checkpoint ``reset_pending``, and the reader starts the group
    afresh at the stream's end.

Catching up
    An evaluator evaluates the pending partitions it holds before it reads them from the stream
    again (at its next rebalance, which a vanished group brings forward): the readings of the
    partition's patients received since the checkpoint, less ``CATCH_UP_MARGIN_SECONDS``
    (flushes of several server processes reach the stream in an order close to, not exactly,
    their received time), from the database, oldest first, through the same handler as the
    stream's entries, at most ``CATCH_UP_MAX_SECONDS`` back. Before those, the readings that
    reached the stream late from the backlog (stored while Redis was away) since the last entry
    acknowledged: their received times can be older than the checkpoint's
    (``monitoring.models.StreamReplay``). Readings that are also in the new stream are
    evaluated twice, which the rules tolerate (``alerts.stream_reader``, "at least once").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from alerts.models import EvaluationCheckpoint
from common import metrics
from monitoring.readings import StoredReading
from monitoring.selectors import readings_received_since, readings_replayed
from monitoring.stream.backlog import REPLAYS_KEPT_SECONDS
from monitoring.stream.entries import entry_order, partition_of

logger = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 1.0  # at most this often a checkpoint write per evaluator
CATCH_UP_MARGIN_SECONDS = 5.0
# Readings older than this are not evaluated any more: as far back as the backlog's late
# appends are remembered.
CATCH_UP_MAX_SECONDS = REPLAYS_KEPT_SECONDS
CATCH_UP_PAGE = 500  # readings per handler call

_clock = time.monotonic  # when the next write is due (a test controls it)


class EvaluationProgress:
    """One evaluator's progress: noted per batch, written now and then, read back when Redis
    forgot a partition (the module docstring says how)."""

    def __init__(self, handler: Callable[[list[StoredReading]], object]) -> None:
        self.handler = handler
        self._through: dict[int, datetime] = {}
        self._stream_ids: dict[int, str] = {}
        self._dirty: set[int] = set()
        self._next_write = 0.0

    # --- noting progress (the evaluator's handler, then the reader after its XACK) ---

    def seen(self, readings: Sequence[StoredReading]) -> None:
        """Note the newest received time per partition of a batch about to be evaluated."""
        through = self._through
        for reading in readings:
            partition = partition_of(reading.patient_id)
            if partition not in through or reading.received_at > through[partition]:
                through[partition] = reading.received_at

    def acknowledged(self, last_ids: dict[int, str]) -> None:
        """The batch's entries are acknowledged (their alerts committed): they count now."""
        self._stream_ids.update(last_ids)
        self._dirty.update(partition for partition in last_ids if partition in self._through)
        if self._dirty and _clock() >= self._next_write:
            try:
                self.write()
            except DatabaseError:
                # The evaluation committed; the checkpoint follows at the next write.
                connection.close()
                logger.exception("writing the evaluation checkpoints failed; retrying later")
                self._next_write = _clock() + CHECKPOINT_SECONDS

    def write(self) -> None:
        """Write the checkpoints noted since the last write (one statement)."""
        if not self._dirty:
            return
        now = timezone.now()
        rows = [
            EvaluationCheckpoint(
                partition=partition,
                evaluated_through=self._through[partition],
                stream_id=self._stream_ids.get(partition, ""),
                updated_at=now,
            )
            for partition in sorted(self._dirty)
        ]
        EvaluationCheckpoint.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["partition"],
            update_fields=["evaluated_through", "stream_id", "updated_at"],
        )
        self._dirty.clear()
        self._next_write = _clock() + CHECKPOINT_SECONDS

    # --- Redis forgot partitions ---

    def groups_created(self, partitions: Iterable[int]) -> list[int]:
        """The consumer groups of ``partitions`` were created now: those evaluated before
        lost their unevaluated entries. Logs, counts and marks them; returns them."""
        lost = sorted(
            EvaluationCheckpoint.objects.filter(partition__in=list(partitions)).values_list(
                "partition", flat=True
            )
        )
        return _reset(lost, "lost their consumer group (Redis restarted empty or was flushed)")

    def groups_went_back(self, positions: dict[int, str]) -> list[int]:
        """The partitions (of ``positions``: partition -> the group's last delivered id) whose
        group stands before the last entry acknowledged of them as the database's checkpoint
        has it (a second behind at most; a snapshot is older): logs, counts and marks them;
        returns them."""
        if not positions:
            return []
        acknowledged = {
            partition: stream_id
            for partition, stream_id in EvaluationCheckpoint.objects.filter(
                partition__in=list(positions), reset_pending=False
            ).values_list("partition", "stream_id")
            if stream_id
        }
        back = sorted(
            partition
            for partition, stream_id in acknowledged.items()
            if entry_order(positions[partition]) < entry_order(stream_id)
        )
        return _reset(
            back,
            "went back (their consumer group stands before what was evaluated: Redis restored "
            "from an older snapshot?)",
        )

    def delivered_again(self, partitions: list[int]) -> list[int]:
        """The reader was handed, as new, entries of ``partitions`` it had acknowledged: logs,
        counts and marks them (after writing what was noted, so that the catch-up starts
        from the newest checkpoint); returns them."""
        self.write()
        return _reset(
            partitions,
            "went back (they delivered again entries already evaluated: Redis restored from "
            "an older snapshot?)",
        )

    def catch_up(self, owned: Iterable[int]) -> int:
        """Evaluate, from the database, the readings of the pending partitions among ``owned``
        received since their checkpoints; returns how many were evaluated."""
        owned = list(owned)
        if not owned:
            return 0
        total = 0
        try:
            pending = list(
                EvaluationCheckpoint.objects.filter(partition__in=owned, reset_pending=True)
            )
            for checkpoint in pending:
                total += self._catch_up(checkpoint)
        except DatabaseError:
            # Still pending: tried again at the next rebalance.
            connection.close()
            logger.exception("catching up on readings from the database failed; retrying")
        return total

    def _catch_up(self, checkpoint: EvaluationCheckpoint) -> int:
        partition = checkpoint.partition
        oldest = timezone.now() - timedelta(seconds=CATCH_UP_MAX_SECONDS)
        margin = timedelta(seconds=CATCH_UP_MARGIN_SECONDS)
        since = max(checkpoint.evaluated_through - margin, oldest)
        # Readings the backlog appended late, after the last entry acknowledged, were received
        # before the checkpoint's time but perhaps never evaluated: their ranges first.
        replayed = readings_replayed(
            partition=partition, appended_since=_acknowledged_at(checkpoint) - margin
        )
        total = 0
        for start, until in _ranges_merged(replayed):
            if start < since and until >= oldest:
                total += self._evaluate(
                    partition, since=max(start, oldest), until=min(until, since)
                )
        total += self._evaluate(partition, since=since)
        EvaluationCheckpoint.objects.filter(partition=partition).update(reset_pending=False)
        self._stream_ids[partition] = ""  # the old stream's ids mean nothing in the new one
        if partition in self._through:
            self._dirty.add(partition)
        self.write()
        logger.warning(
            "readings stream partition %d: %d readings received since %s%s evaluated from the "
            "database",
            partition,
            total,
            since.isoformat(),
            f" (and {len(replayed)} ranges appended late from the backlog)" if replayed else "",
        )
        return total

    def _evaluate(self, partition: int, *, since: datetime, until: datetime | None = None) -> int:
        """Evaluate the partition's readings received from ``since`` (to ``until``), oldest
        first, page by page; returns how many."""
        total, after = 0, None
        while page := readings_received_since(
            since=since, until=until, partition=partition, after=after, limit=CATCH_UP_PAGE
        ):
            self.seen(page)
            self.handler(page)
            total += len(page)
            after = (page[-1].received_at, page[-1].id)
        return total


def _acknowledged_at(checkpoint: EvaluationCheckpoint) -> datetime:
    """When the checkpoint's last acknowledged entry was appended (its id's time, Redis's
    clock); the checkpoint's own time if it has none (caught up from the database since)."""
    if not checkpoint.stream_id:
        return checkpoint.updated_at
    return datetime.fromtimestamp(entry_order(checkpoint.stream_id)[0] / 1000, tz=UTC)


def _ranges_merged(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping ``(start, end)`` ranges (sorted by start) as one."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _reset(partitions: list[int], what: str) -> list[int]:
    """Partitions whose unevaluated entries Redis lost (``what`` happened to them): logged,
    counted and marked for the catch-up; returns them."""
    if not partitions:
        return []
    EvaluationCheckpoint.objects.filter(partition__in=partitions).update(reset_pending=True)
    metrics.EVALUATION_STREAM_RESETS.inc(len(partitions))
    logger.error(
        "readings stream partitions %s %s: the readings stored since their checkpoints are "
        "evaluated from the database",
        partitions,
        what,
    )
    return partitions
