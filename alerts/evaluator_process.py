"""The alarm evaluator: the process (``manage.py alarms_evaluate``, Procfile ``alarms:``) that
reads the readings stream and runs the alarm rules, outside every web process.

Readings reach the stream in the transaction that stores them (both ingest paths), so every
stored reading is evaluated at least once, in order per patient, even when an evaluator is
killed or none runs for a while (the readings wait in the stream). See
``monitoring.stream.entries`` for partitions, leases and acknowledgements. Readings stored
while Redis was away wait in the database's backlog instead (``monitoring.stream.backlog``);
the server processes put them into the stream once Redis answers, and the evaluator does so
for any that a process left behind, so those are evaluated too. What the evaluator evaluated
is checkpointed in the database (``alerts.checkpoints``): readings that a Redis restarted
empty or flushed lost from the stream are evaluated from there.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from alerts.batch_evaluation import alarms_evaluate
from alerts.checkpoints import EvaluationProgress
from alerts.stream_reader import StreamReader, drain
from common import metrics
from monitoring.readings import StoredReading
from monitoring.stream.backlog import stream_backlog_replay

logger = logging.getLogger(__name__)


def evaluate_batch(batch: list[StoredReading]) -> None:
    """The stream handler: the new entries of the partitions read together (or, retried
    after a failure, one partition's). Alert writes are committed when it returns, before the
    entries are acknowledged."""
    if not connection.in_atomic_block:  # (a test's transaction must be left alone)
        close_old_connections()  # a long-lived process: drop broken or expired connections
    started = time.perf_counter()
    try:
        alarms_evaluate(stored=batch)
    except Exception:
        metrics.EVALUATOR_BATCH_FAILURES.inc()
        raise
    metrics.EVALUATOR_BATCH_SECONDS.observe(time.perf_counter() - started)
    metrics.EVALUATOR_READINGS.inc(len(batch))
    if batch:
        oldest = min(reading.received_at for reading in batch)
        metrics.EVALUATION_DELAY_SECONDS.observe(
            max(0.0, (timezone.now() - oldest).total_seconds())
        )


def backlog_replay() -> None:
    """Put readings deferred while Redis was away, and left in the backlog by a server process
    that stopped before it replayed them, into the stream (where this evaluator reads them)."""
    if not connection.in_atomic_block:
        close_old_connections()
    try:
        stream_backlog_replay()
    except DatabaseError:
        connection.close()
        logger.exception("replaying the readings backlog failed; retrying later")


def evaluate_pending(*, consumer: str | None = None) -> int:
    """Evaluate everything waiting in the stream (and the backlog) now, in this process;
    returns how many entries were evaluated (``alarms_evaluate --once``, and tests instead of
    waiting)."""
    backlog_replay()
    return drain(evaluate_batch, consumer=consumer)


def evaluator_run(*, consumer: str, stop: threading.Event, block_ms: int = 1000) -> None:
    """Evaluate the stream until ``stop`` is set, sharing its partitions with any other
    evaluator; gives the partitions back on the way out."""
    logger.info("alarm evaluator %s starting", consumer)
    progress = EvaluationProgress(evaluate_batch)

    def handle(batch: list[StoredReading]) -> None:
        progress.seen(batch)
        evaluate_batch(batch)

    StreamReader(handle, consumer=consumer, progress=progress).run(
        stop=stop, block_ms=block_ms, every_rebalance=backlog_replay
    )
    progress.write()  # what this evaluator evaluated last, for whoever takes over
    logger.info("alarm evaluator %s stopped", consumer)
