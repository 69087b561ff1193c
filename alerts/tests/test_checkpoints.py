"""Evaluation progress in the database (``alerts.checkpoints``), against real Redis and the
real database: checkpoints written per second rather than per reading; a consumer group that
vanished is detected (ERROR, metric) and the readings stored since the checkpoint are
evaluated from the database."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from alerts import checkpoints
from alerts.checkpoints import EvaluationProgress
from alerts.evaluator_process import evaluate_batch
from alerts.models import Alert, EvaluationCheckpoint
from alerts.stream_reader import StreamReader
from common import metrics
from monitoring import readings as readings_module
from monitoring.readings import ReadingIn, StoredReading, readings_store
from monitoring.stream import entries as stream
from monitoring.stream.backlog import readings_queue, stream_backlog_add, stream_backlog_replay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_readings_stream")]


def _store(patient_id: int, *, bpm: int, seconds: int, end: datetime) -> list[StoredReading]:
    """One reading a second for ``seconds`` up to ``end`` (stored, not queued)."""
    return readings_store(
        readings=[
            ReadingIn(
                patient_id=patient_id,
                device_id=None,
                metric="heart_rate",
                value=bpm,
                recorded_at=end - timedelta(seconds=seconds - i),
                seq=None,
            )
            for i in range(seconds + 1)
        ]
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reader(progress: EvaluationProgress) -> StreamReader:
    def handle(batch: list[StoredReading]) -> None:
        progress.seen(batch)
        evaluate_batch(batch)

    return StreamReader(handle, consumer="ckpt", progress=progress)


def test_checkpoints_are_written_at_most_once_a_second_not_per_batch(patient, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(checkpoints, "_clock", clock)
    progress = EvaluationProgress(evaluate_batch)
    partition = stream.partition_of(patient.id)
    writes: list[datetime] = []
    real_write = progress.write

    def counted_write() -> None:
        writes.append(datetime.now(UTC))
        real_write()

    monkeypatch.setattr(progress, "write", counted_write)
    end = datetime.now(UTC)
    with _reader(progress) as reader:
        for second in range(3):
            stored = _store(patient.id, bpm=75, seconds=2, end=end + timedelta(seconds=second))
            readings_queue(stored)
            assert reader.poll() == 3
            if second == 0:
                checkpoint = EvaluationCheckpoint.objects.get(partition=partition)
                assert checkpoint.evaluated_through == stored[-1].received_at
                assert not checkpoint.reset_pending and checkpoint.stream_id
        assert len(writes) == 1  # three batches within the same second: one write
        clock.now += checkpoints.CHECKPOINT_SECONDS
        readings_queue(_store(patient.id, bpm=75, seconds=0, end=end + timedelta(seconds=5)))
        assert reader.poll() == 1
    assert len(writes) == 2
    assert EvaluationCheckpoint.objects.get(partition=partition).evaluated_through == max(
        r.received_at for r in _all_readings(patient.id)
    )


def _all_readings(patient_id: int) -> list[StoredReading]:
    from monitoring.selectors import readings_received_since

    return readings_received_since(
        since=datetime(2000, 1, 1, tzinfo=UTC),
        partition=stream.partition_of(patient_id),
        limit=1000,
    )


def _evaluated_before(patient_id: int, end: datetime) -> None:
    """Six readings of 75 bpm up to 21 s before ``end``, queued, evaluated and checkpointed."""
    progress = EvaluationProgress(evaluate_batch)
    readings_queue(_store(patient_id, bpm=75, seconds=5, end=end - timedelta(seconds=21)))
    with _reader(progress) as reader:
        assert reader.poll() == 6
        progress.write()


def test_a_vanished_consumer_group_is_logged_and_the_lost_readings_are_evaluated(patient, caplog):
    """Readings stored and appended while no evaluator ran, then Redis forgot the stream: the
    next evaluator finds the group gone and evaluates them from the database."""
    end = datetime.now(UTC)
    _evaluated_before(patient.id, end)
    episode = _store(patient.id, bpm=35, seconds=20, end=end)  # a bradycardia held 20 s
    readings_queue(episode)
    stream.redis_client().flushdb()  # Redis restarted empty: the episode's entries are gone
    resets = metrics.EVALUATION_STREAM_RESETS._value.get()
    partition = stream.partition_of(patient.id)
    with caplog.at_level(logging.WARNING), _reader(EvaluationProgress(evaluate_batch)) as reader:
        # start(): the groups were created anew and the partition caught up before reading
        assert reader.poll() == 0
    alert = Alert.objects.get(patient=patient)
    assert (alert.kind, alert.priority) == ("bradycardia", "high")
    assert metrics.EVALUATION_STREAM_RESETS._value.get() == resets + 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"partitions [{partition}] lost their consumer group" in r.message for r in errors)
    assert any("evaluated from the database" in r.message for r in caplog.records)
    checkpoint = EvaluationCheckpoint.objects.get(partition=partition)
    assert not checkpoint.reset_pending
    assert checkpoint.evaluated_through == episode[-1].received_at


def test_a_new_deployment_without_checkpoints_is_no_reset(patient, caplog):
    with caplog.at_level(logging.ERROR), _reader(EvaluationProgress(evaluate_batch)):
        pass
    assert not [r for r in caplog.records if "lost their consumer group" in r.message]
    assert not EvaluationCheckpoint.objects.exists()


def test_a_consumer_group_that_went_back_is_logged_and_the_lost_readings_are_evaluated(
    patient, caplog
):
    """Redis restored from a snapshot taken before the evaluator read the first readings: the
    stream holds only those, the group stands at their start, and the episode stored after the
    snapshot is gone from Redis. The evaluator holding the partition finds its group behind
    the checkpoint, evaluates the episode from the database, and does not read the old entries
    again."""
    end = datetime.now(UTC)
    _evaluated_before(patient.id, end)
    partition = stream.partition_of(patient.id)
    assert EvaluationCheckpoint.objects.get(partition=partition).stream_id
    episode = _store(patient.id, bpm=35, seconds=20, end=end)  # stored after the snapshot
    key = stream.partition_key(partition)
    stream.redis_client().xgroup_setid(key, stream.GROUP, id="0")  # the snapshot's group
    resets = metrics.EVALUATION_STREAM_RESETS._value.get()
    handled: list[StoredReading] = []

    def handle(batch: list[StoredReading]) -> None:
        handled.extend(batch)
        evaluate_batch(batch)

    later = EvaluationProgress(handle)
    with (
        caplog.at_level(logging.WARNING),
        StreamReader(handle, consumer="ckpt-2", progress=later) as reader,
    ):
        assert reader.poll() == 0  # the old entries are not delivered again
    alert = Alert.objects.get(patient=patient)
    assert (alert.kind, alert.priority) == ("bradycardia", "high")
    assert metrics.EVALUATION_STREAM_RESETS._value.get() == resets + 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"partitions [{partition}] went back" in r.message for r in errors)
    assert {r.id for r in handled} >= {r.id for r in episode}
    assert not EvaluationCheckpoint.objects.get(partition=partition).reset_pending


def test_a_group_ahead_of_its_checkpoint_is_no_reset(patient, caplog):
    progress = EvaluationProgress(evaluate_batch)
    readings_queue(_store(patient.id, bpm=75, seconds=3, end=datetime.now(UTC)))
    with _reader(progress) as reader:
        assert reader.poll() == 4
        progress.write()
    with caplog.at_level(logging.ERROR), _reader(EvaluationProgress(evaluate_batch)) as reader:
        readings_queue(_store(patient.id, bpm=75, seconds=0, end=datetime.now(UTC)))
        assert reader.poll() == 1
    assert not [r for r in caplog.records if "went back" in r.message]


def test_a_group_that_goes_back_under_a_running_reader_is_caught_at_its_next_read(patient, caplog):
    """Redis went back while an evaluator held the partition (no rebalance since): its next
    read hands it, as new, entries it acknowledged already. It does not evaluate them from the
    stream again, resets the partition at once, and evaluates from the database the episode
    stored after the snapshot."""
    end = datetime.now(UTC)
    handled: list[StoredReading] = []
    progress = EvaluationProgress(evaluate_batch)

    def handle(batch: list[StoredReading]) -> None:
        handled.extend(batch)
        progress.seen(batch)
        evaluate_batch(batch)

    progress.handler = handle
    partition = stream.partition_of(patient.id)
    with (
        caplog.at_level(logging.WARNING),
        StreamReader(handle, consumer="ckpt", progress=progress) as reader,
    ):
        readings_queue(_store(patient.id, bpm=75, seconds=5, end=end - timedelta(seconds=21)))
        assert reader.poll() == 6
        episode = _store(patient.id, bpm=35, seconds=20, end=end)  # stored after the snapshot
        stream.redis_client().xgroup_setid(stream.partition_key(partition), stream.GROUP, id="0")
        resets = metrics.EVALUATION_STREAM_RESETS._value.get()
        handled.clear()
        assert reader.poll() == 0  # the old entries are not evaluated again
        assert metrics.EVALUATION_STREAM_RESETS._value.get() == resets + 1
        assert {r.id for r in handled} >= {r.id for r in episode}
        readings_queue(_store(patient.id, bpm=75, seconds=0, end=end + timedelta(seconds=1)))
        assert reader.poll() == 1  # the group, started afresh, reads what comes next
    alert = Alert.objects.get(patient=patient)
    assert (alert.kind, alert.priority) == ("bradycardia", "high")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(
        f"partitions [{partition}] went back (they delivered again" in r.message for r in errors
    )
    assert not EvaluationCheckpoint.objects.get(partition=partition).reset_pending


def test_readings_the_backlog_appended_late_are_caught_up_when_the_stream_loses_them(
    patient, monkeypatch, caplog
):
    """An episode stored while Redis was away waits in the backlog; newer readings (another
    server process) are evaluated meanwhile, so the checkpoint passes the episode's received
    time. Then the backlog reaches the stream, and Redis loses it again before it is read:
    the catch-up goes back to the late-appended readings, not only to the checkpoint."""
    end = datetime.now(UTC)
    partition = stream.partition_of(patient.id)
    stored_at = end - timedelta(seconds=60)
    monkeypatch.setattr(readings_module.timezone, "now", lambda: stored_at)
    episode = _store(patient.id, bpm=35, seconds=20, end=stored_at)
    monkeypatch.undo()
    stream_backlog_add(episode)  # Redis away: the episode's entries wait in the backlog
    progress = EvaluationProgress(evaluate_batch)
    readings_queue(_store(patient.id, bpm=75, seconds=2, end=end))
    with _reader(progress) as reader:
        assert reader.poll() == 3
        progress.write()
    assert EvaluationCheckpoint.objects.get(partition=partition).evaluated_through > (
        episode[-1].received_at + timedelta(seconds=checkpoints.CATCH_UP_MARGIN_SECONDS)
    )
    assert stream_backlog_replay() == len(episode)  # Redis is back: the episode is appended
    stream.redis_client().flushdb()  # and lost again before any evaluator read it
    handled: list[StoredReading] = []

    def handle(batch: list[StoredReading]) -> None:
        handled.extend(batch)
        evaluate_batch(batch)

    with (
        caplog.at_level(logging.WARNING),
        StreamReader(handle, consumer="ckpt-2", progress=EvaluationProgress(handle)),
    ):
        pass
    assert {r.id for r in handled} >= {r.id for r in episode}
    assert any("appended late from the backlog" in r.message for r in caplog.records)
    assert not EvaluationCheckpoint.objects.get(partition=partition).reset_pending
