"""The readings stream and its consumer-group reader, against real Redis (the embedded one
when REDIS_URL is unset): entries, order, acknowledgement, redelivery, partition leases,
trimming, lag; and the alarm evaluator commands on the real database."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
import redis
from django.core.management import call_command

from alerts import batch_evaluation, state
from alerts.models import Alert, AlertEvent
from alerts.stream_reader import StreamReader, drain
from monitoring.readings import StoredReading, readings_store
from monitoring.stream import entries as stream
from monitoring.stream.backlog import readings_queue
from monitoring.stream.entries import (
    GROUP,
    entry_readings,
    partition_key,
    reading_decode,
    reading_encode,
)
from monitoring.stream.lag import stream_lag
from testing.factories import ReadingInFactory, StoredReadingFactory

LEASE_MS = 600  # short leases: a "dead" consumer's partitions free up within a second
BASE = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("clean_readings_stream")


@pytest.fixture
def client() -> redis.Redis:
    return stream.redis_client()


def reading(patient_id: int, i: int, *, bpm: int = 60) -> StoredReading:
    at = BASE + timedelta(seconds=i)
    return StoredReadingFactory(
        id=patient_id * 100_000 + i,
        patient_id=patient_id,
        device_id=patient_id + 1000,
        ward_id=3,
        value=bpm,
        recorded_at=at,
        received_at=at + timedelta(milliseconds=20),
        seq=i + 1,
    )


class Recorder:
    """A handler that records each call's readings (and can fail on demand)."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[list[StoredReading]] = []
        self.fail = fail  # the next this many calls raise

    def __call__(self, batch: list[StoredReading]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("evaluation failed")
        self.calls.append(batch)

    @property
    def ids(self) -> list[int]:
        return [r.id for batch in self.calls for r in batch]

    def partitions(self) -> set[int]:
        return {stream.partition_of(r.patient_id) for batch in self.calls for r in batch}


def wait_until(predicate: Callable[[], Any], seconds: float, what: str) -> None:
    """For lease and idle-time expiry, which are Redis's clock, not a step of ours."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def pending(client: redis.Redis, partition: int) -> int:
    summary = cast("dict[str, Any]", client.xpending(partition_key(partition), GROUP))
    return int(summary["pending"])


# --- Entries --------------------------------------------------------------------------------


def queue_one_by_one(readings: list[StoredReading]) -> None:
    """Queue each reading in an append of its own, so each is an entry of its own (a flush
    holds one reading of a patient at low rates): the tests of order, acknowledgement and
    leases below count entries."""
    for one in readings:
        readings_queue([one])


def test_a_reading_survives_the_round_trip_through_a_stream_entry(client):
    ist = timezone(timedelta(hours=5, minutes=30))
    originals = [
        reading(7, 1),
        StoredReading(
            id=9,
            patient_id=8,
            device_id=None,
            ward_id=None,
            metric="fetal_heart_rate",
            value=140,
            recorded_at=datetime(2026, 11, 20, 15, 30, 0, 123456, tzinfo=ist),
            received_at=datetime(2026, 11, 20, 10, 0, 1, 999999, tzinfo=UTC),
            seq=None,
        ),
    ]
    readings_queue(originals)
    entries = [
        fields
        for key in {partition_key(stream.partition_of(r.patient_id)) for r in originals}
        for _id, fields in client.xrange(key)
    ]
    decoded = sorted((r for fields in entries for r in entry_readings(fields)), key=lambda r: r.id)
    assert decoded == sorted(originals, key=lambda r: r.id)  # the same instants, to the µs
    # An entry of one reading, as releases before packing appended them, still reads.
    as_redis_returns = {key: str(value) for key, value in reading_encode(originals[1]).items()}
    assert reading_decode(as_redis_returns) == originals[1]
    assert entry_readings(as_redis_returns) == [originals[1]]


def test_a_batch_is_appended_in_one_round_trip_as_one_entry_per_partition(client, monkeypatch):
    calls = []
    execute = redis.client.Pipeline.execute

    def counted(self, *args, **kwargs):
        calls.append(len(self.command_stack))
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counted)
    batch = [reading(p, i) for p in range(20) for i in range(5)]
    readings_queue(batch)
    assert calls == [8]  # one XADD per partition, whatever the number of readings
    for partition in range(8):
        [(_id, fields)] = client.xrange(partition_key(partition))
        assert entry_readings(fields) == [r for r in batch if r.patient_id % 8 == partition]


def test_a_patients_readings_go_to_one_partition(client):
    readings_queue([reading(p, i) for i in range(3) for p in range(1, 21)])
    for partition in range(stream.partitions()):
        patients = {
            r.patient_id
            for _id, fields in client.xrange(partition_key(partition))
            for r in entry_readings(fields)
        }
        assert patients == {p for p in range(1, 21) if p % 8 == partition}


def test_entries_older_than_the_retention_are_trimmed(client, settings):
    settings.READINGS_STREAM_RETENTION_SECONDS = 3600
    key = partition_key(5)
    old_ms = int((time.time() - 2 * 3600) * 1000)  # two hours old: past the retention
    for i in range(300):
        client.xadd(key, reading_encode(reading(5, i)), id=f"{old_ms + i}-0")
    queue_one_by_one([reading(5, i) for i in range(300, 310)])
    # MINID ~ trims whole nodes (100 entries each by default): the old entries give or take
    # a node; the new ones all stay.
    ids = [entry_readings(fields)[0].id for _id, fields in client.xrange(key)]
    assert len(ids) <= 110
    assert ids[-10:] == [reading(5, i).id for i in range(300, 310)]


# --- Reading: order, acknowledgement, redelivery -------------------------------------------


def test_drain_hands_each_partition_its_readings_in_order():
    appended = []
    for round_ in range(4):
        batch = [reading(p, round_ * 10 + i) for p in (1, 2, 9, 17) for i in range(3)]
        queue_one_by_one(batch)
        appended += batch
    handler = Recorder()
    assert drain(handler) == len(appended)
    # The new entries of every partition read come in one call (the batch's queries once).
    assert len(handler.calls) == 1
    assert {stream.partition_of(r.patient_id) for r in handler.calls[0]} == {
        stream.partition_of(p) for p in (1, 2, 9, 17)
    }
    for patient in (1, 2, 9, 17):
        seen = [r.id for batch in handler.calls for r in batch if r.patient_id == patient]
        assert seen == [r.id for r in appended if r.patient_id == patient]
    assert drain(Recorder()) == 0  # acknowledged: nothing is delivered twice


def test_entries_are_acknowledged_only_after_the_handler_returned(client):
    queue_one_by_one([reading(3, i) for i in range(5)])
    during: list[int] = []

    def handler(batch: list[StoredReading]) -> None:
        during.append(pending(client, 3))

    drain(handler)
    assert during == [5]
    assert pending(client, 3) == 0


def test_a_failing_handler_leaves_the_entries_pending_and_they_come_back_first(client):
    first = [reading(4, i) for i in range(3)]
    later = [reading(4, i) for i in range(3, 6)]
    handler = Recorder(fail=1)
    queue_one_by_one(first)
    with StreamReader(handler, consumer="c", lease_ms=LEASE_MS, retry_seconds=0) as reader:
        assert reader.poll() == 0
        assert pending(client, 4) == 3
        queue_one_by_one(later)
        assert reader.poll() == 3  # the failed ones again, before anything newer
        assert reader.poll() == 3
        assert reader.poll() == 0
    assert handler.ids == [r.id for r in first + later]
    assert pending(client, 4) == 0


def test_after_a_failure_each_partition_is_retried_alone(client):
    queue_one_by_one([reading(p, i) for p in (1, 2) for i in range(2)])
    handler = Recorder(fail=2)  # the read together, then partition 1's retry, fail
    with StreamReader(handler, consumer="c", lease_ms=LEASE_MS, retry_seconds=0) as reader:
        assert reader.poll() == 0
        assert pending(client, 1) == 2 and pending(client, 2) == 2
        assert reader.poll() == 2  # partition 1 failed again alone; partition 2 went on
        assert pending(client, 1) == 2 and pending(client, 2) == 0
        assert reader.poll() == 2
    assert pending(client, 1) == 0
    assert [{r.patient_id for r in call} for call in handler.calls] == [{2}, {1}]


def test_drain_raises_the_handler_error_and_a_later_drain_redelivers(client):
    queue_one_by_one([reading(6, i) for i in range(4)])
    with pytest.raises(RuntimeError):
        drain(Recorder(fail=1))
    assert pending(client, 6) == 4
    details = client.xpending_range(partition_key(6), GROUP, "-", "+", 10)
    assert {d["times_delivered"] for d in details} == {1}
    handler = Recorder()
    assert drain(handler) == 4
    assert handler.ids == [reading(6, i).id for i in range(4)]


# --- Partition leases and takeover ----------------------------------------------------------


def test_a_dead_consumers_pending_entries_are_claimed_when_its_lease_expires(client):
    queue_one_by_one([reading(2, i) for i in range(4)])
    dead = StreamReader(Recorder(), consumer="dead", lease_ms=LEASE_MS)
    dead.start()  # takes every partition, then dies between read and acknowledgement:
    client.xreadgroup(GROUP, "dead", {partition_key(2): ">"})
    assert pending(client, 2) == 4

    handler = Recorder()
    with StreamReader(handler, consumer="alive", lease_ms=LEASE_MS) as alive:
        assert alive.owned == []  # the dead one's leases still hold
        wait_until(lambda: len(alive.rebalance()) == 8, 5, "the dead consumer's leases")
        assert alive.poll() == 4
    assert handler.ids == [reading(2, i).id for i in range(4)]
    assert pending(client, 2) == 0
    names = {stream.text(c["name"]) for c in client.xinfo_consumers(partition_key(2), GROUP)}
    assert "dead" not in names  # forgotten once its entries were taken over


def test_entries_stranded_with_another_consumer_are_reclaimed_after_min_idle(client):
    handler = Recorder()
    with StreamReader(handler, consumer="owner", lease_ms=5000, min_idle_ms=500) as owner:
        queue_one_by_one([reading(1, i) for i in range(3)])
        # A consumer that read just as it lost its lease, and then died.
        client.xreadgroup(GROUP, "zombie", {partition_key(1): ">"})
        assert owner.poll() == 0
        owner.rebalance()
        assert owner.poll() == 0  # not idle long enough yet: not claimed
        wait_until(lambda: owner.rebalance() and owner.poll() == 3, 5, "the reclaim")
    assert handler.ids == [reading(1, i).id for i in range(3)]


def test_two_consumers_split_the_partitions_and_one_takes_over_when_the_other_dies(client):
    a_handler, b_handler = Recorder(), Recorder()
    a = StreamReader(a_handler, consumer="a", lease_ms=LEASE_MS, retry_seconds=0)
    b = StreamReader(b_handler, consumer="b", lease_ms=LEASE_MS, retry_seconds=0)
    a.start()
    b.start()
    assert len(a.owned) == 8 and b.owned == []  # a came first
    a.rebalance()  # a sees two live consumers: gives back what is above its share
    b.rebalance()
    assert len(a.owned) == 4 and len(b.owned) == 4
    assert set(a.owned).isdisjoint(b.owned)
    assert {row.partition: row.owner for row in stream_lag()} == {
        **dict.fromkeys(a.owned, "a"),
        **dict.fromkeys(b.owned, "b"),
    }

    queue_one_by_one([reading(p, 0) for p in range(16)])
    assert a.poll() == 8 and b.poll() == 8
    assert a_handler.partitions() == set(a.owned)
    assert b_handler.partitions() == set(b.owned)

    # b reads new entries and fails on them, then dies (no renewal, no release).
    queue_one_by_one([reading(p, 1) for p in range(16)])
    b_handler.fail = 99
    assert b.poll() == 0
    assert sum(pending(client, p) for p in b.owned) == 8
    b_partitions = set(b.owned)

    wait_until(lambda: len(a.rebalance()) == 8, 5, "b's leases to expire")
    while a.poll():
        pass
    a_ids = {r.id for batch in a_handler.calls for r in batch}
    assert {reading(p, 1).id for p in range(16)} <= a_ids
    assert {p for p in range(8) if pending(client, p)} == set()
    a.close()
    assert {row.owner for row in stream_lag()} == {None}
    assert b_partitions  # (b held some)


def test_a_consumer_that_stops_cleanly_hands_its_partitions_over_at_once():
    with StreamReader(Recorder(), consumer="a", lease_ms=60_000) as a:
        b = StreamReader(Recorder(), consumer="b", lease_ms=60_000)
        b.start()
        a.rebalance()
        b.rebalance()
        assert len(b.owned) == 4
        b.close()  # releases its leases and leaves the live set
        assert len(a.rebalance()) == 8  # no waiting for a lease to expire


def test_pending_entries_trimmed_before_evaluation_are_acknowledged_and_skipped(client):
    queue_one_by_one([reading(3, i) for i in range(3)])
    StreamReader(Recorder(), consumer="dead", lease_ms=LEASE_MS).start()
    client.xreadgroup(GROUP, "dead", {partition_key(3): ">"})
    client.xtrim(partition_key(3), maxlen=1, approximate=False)  # the two oldest are gone
    handler = Recorder()
    with StreamReader(handler, consumer="alive", lease_ms=LEASE_MS) as alive:
        wait_until(lambda: len(alive.rebalance()) == 8, 5, "the dead consumer's leases")
        while alive.poll():
            pass
    assert handler.ids == [reading(3, 2).id]
    assert pending(client, 3) == 0


# --- Lag --------------------------------------------------------------------------------------


def test_lag_shows_waiting_pending_and_undelivered_readings_and_the_owner(client):
    queue_one_by_one([reading(5, i) for i in range(5)])
    row = stream_lag()[5]
    assert (row.length, row.pending, row.lag, row.last_delivered_id, row.owner) == (
        5,
        0,
        5,
        None,
        None,
    )
    with StreamReader(Recorder(fail=1), consumer="c", lease_ms=60_000) as reader:
        reader.poll()
        queue_one_by_one([reading(5, i) for i in range(5, 8)])
        row = stream_lag()[5]
        assert (row.length, row.pending, row.lag, row.owner) == (8, 5, 3, "c")
        assert row.lag_exact and row.last_delivered_id is not None
    assert {r.partition for r in stream_lag() if r.length} == {5}


def test_the_lag_command_prints_a_row_per_partition_or_json():
    queue_one_by_one([reading(2, i) for i in range(4)])
    out = io.StringIO()
    call_command("alarms_lag", "--json", stdout=out)
    rows = json.loads(out.getvalue())
    assert [r["partition"] for r in rows] == list(range(8))
    assert rows[2]["lag"] == 4 and rows[2]["owner"] is None
    out = io.StringIO()
    call_command("alarms_lag", stdout=out)
    assert "4 readings not yet evaluated." in out.getvalue()


# --- The evaluator on the real database -----------------------------------------------------


def _episode(patient_id: int, *, seconds: int = 20, bpm: int = 35) -> list[StoredReading]:
    start = datetime.now(UTC) - timedelta(seconds=seconds)
    return readings_store(
        readings=[
            ReadingInFactory(
                patient_id=patient_id, value=bpm, recorded_at=start + timedelta(seconds=i)
            )
            for i in range(seconds + 1)
        ]
    )


@pytest.mark.django_db
def test_the_evaluator_once_raises_one_alert_for_a_streamed_episode(patient):
    queue_one_by_one(_episode(patient.id))
    out = io.StringIO()
    call_command("alarms_evaluate", "--once", "--consumer", "once", stdout=out)
    assert "Evaluated 21 stream entries." in out.getvalue()
    alert = Alert.objects.get(patient=patient)
    assert (alert.kind, alert.priority, alert.state) == ("bradycardia", "high", "active")
    assert AlertEvent.objects.filter(alert=alert, action="raised").count() == 1


@pytest.mark.django_db
def test_a_batch_evaluated_again_after_a_crash_raises_no_second_alert(patient, client):
    queue_one_by_one(_episode(patient.id))

    def crash_after_commit(batch: list[StoredReading]) -> None:
        batch_evaluation.alarms_evaluate(stored=batch)  # the alert is committed...
        client.delete(state.state_key(patient.id, "heart_rate"))  # ...the rule state is not
        raise RuntimeError("killed before the acknowledgement")

    with pytest.raises(RuntimeError):
        drain(crash_after_commit)
    assert drain(lambda batch: batch_evaluation.alarms_evaluate(stored=batch)) == 21
    alert = Alert.objects.get(patient=patient)
    assert alert.priority == "high"
    assert AlertEvent.objects.filter(alert=alert).count() == 1


def test_a_busy_stream_is_read_again_only_a_pace_after_the_previous_read(client, settings):
    """After a read that found entries the reader waits out the rest of the pace, so batches
    gather a few times a second; the wait is asked of ``stop`` (no clock in the test)."""
    import threading

    settings.READINGS_STREAM_PACE_SECONDS = 0.2
    queue_one_by_one([reading(4, i) for i in range(3)])
    handler = Recorder()
    waits: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout=None):
            if threading.current_thread() is threading.main_thread():
                waits.append(timeout)
                self.set()  # one paced read is enough
            return super().wait(timeout)

    StreamReader(handler, consumer="paced", lease_ms=LEASE_MS).run(stop=Stop(), block_ms=10)
    assert len(handler.ids) == 3
    assert len(waits) == 1 and 0 < waits[0] <= 0.2
