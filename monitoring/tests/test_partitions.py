"""The readings table's day partitions on PostgreSQL: creation ahead of time, idempotency across
partitions, partition pruning of the history and aggregation queries. Retention is in
test_partition_retention.py, the migration of a populated table (and SQLite's one plain table)
in test_partition_migration.py."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from monitoring.models import Reading, ReadingKey
from monitoring.partitions import (
    DEFAULT_PARTITION,
    partition_name,
    postgres_partitioned,
    readings_partitions,
    readings_partitions_ensure,
)
from monitoring.readings import ReadingIn, readings_store
from monitoring.selectors import readings_aggregate_query, readings_history
from monitoring.tasks import readings_partitions_maintain
from testing.factories import DeviceFactory, PatientFactory, ReadingInFactory

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only"
)
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the embedded default keeps one plain table"
)

# Days long before the test run's today, so the partitions the tests create are their own.
D0 = date(2025, 3, 10)
_PARTITION = re.compile(r"monitoring_reading_(?:p\d{8}|default)\b")


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _reading(device, *, seq: int | None, at: datetime, bpm: int = 80) -> ReadingIn:
    return ReadingInFactory(device=device, seq=seq, recorded_at=at, value=bpm)


def _table_of(reading_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM monitoring_reading WHERE id = %s", [reading_id]
        )
        return cursor.fetchone()[0]


def _exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def _checks_done() -> None:
    """Run the deferred foreign-key checks of the rows this test's transaction wrote: a table
    with pending checks cannot be dropped (in production the rows were committed long ago)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _partitions_in_plan(plan: str) -> set[str]:
    return set(_PARTITION.findall(plan))


# --- Creation ahead of time ---------------------------------------------------------------


@postgres_only
@pytest.mark.django_db
def test_the_table_is_partitioned_by_day_through_the_days_ahead():
    assert postgres_partitioned()
    readings_partitions_ensure()  # what the hourly task does, in case the day changed since migrate
    today = datetime.now(UTC).date()
    names = {p.name for p in readings_partitions()}
    for offset in range(settings.READINGS_PARTITIONS_AHEAD_DAYS + 1):
        assert partition_name(today + timedelta(days=offset)) in names
    assert DEFAULT_PARTITION in names


@postgres_only
@pytest.mark.django_db
def test_ensure_creates_the_days_ahead_once():
    now = _at(D0, 13)
    created = readings_partitions_ensure(now=now, ahead_days=2)
    assert created == [partition_name(D0 + timedelta(days=n)) for n in range(3)]
    assert readings_partitions_ensure(now=now, ahead_days=2) == []
    bounds = {p.name: (p.start, p.end) for p in readings_partitions()}
    assert bounds[partition_name(D0)] == (_at(D0, 0), _at(D0 + timedelta(days=1), 0))


@postgres_only
@pytest.mark.django_db
def test_the_beat_task_creates_the_partitions_ahead(settings):
    assert settings.CELERY_BEAT_SCHEDULE["readings-partitions-maintain"]["task"] == (
        readings_partitions_maintain.name
    )
    readings_partitions_ensure()
    settings.READINGS_PARTITIONS_AHEAD_DAYS = settings.READINGS_PARTITIONS_AHEAD_DAYS + 3
    result = readings_partitions_maintain.apply().get()
    assert result["created"] == 3
    last = datetime.now(UTC).date() + timedelta(days=settings.READINGS_PARTITIONS_AHEAD_DAYS)
    assert _exists(partition_name(last))


@postgres_only
@pytest.mark.django_db
def test_a_day_waiting_in_the_default_partition_moves_into_its_new_partition(device):
    [early] = readings_store(readings=[_reading(device, seq=1, at=_at(D0, 9))])
    assert _table_of(early.id) == DEFAULT_PARTITION  # no partition for that day yet: kept
    readings_partitions_ensure(now=_at(D0, 12), ahead_days=0)
    assert _table_of(early.id) == partition_name(D0)
    moved = Reading.objects.get(id=early.id)
    assert (moved.seq, moved.recorded_at, moved.device_id) == (1, _at(D0, 9), device.id)
    # Its idempotency key is still there: the resend is stored once.
    assert readings_store(readings=[_reading(device, seq=1, at=_at(D0, 9))]) == []


# --- Idempotency across partitions ----------------------------------------------------------


@postgres_only
@pytest.mark.django_db
def test_a_resend_dated_in_another_partition_is_stored_once(device):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=3)
    [first] = readings_store(readings=[_reading(device, seq=7, at=_at(D0, 23, 59))])
    assert _table_of(first.id) == partition_name(D0)
    # The same seq again, dated two days later (another partition) and in the default one.
    assert (
        readings_store(readings=[_reading(device, seq=7, at=_at(D0 + timedelta(days=2), 1))]) == []
    )
    assert readings_store(readings=[_reading(device, seq=7, at=_at(date(2019, 1, 1), 1))]) == []
    assert list(Reading.objects.filter(device=device).values_list("id", flat=True)) == [first.id]


@postgres_only
@pytest.mark.django_db
def test_one_batch_with_a_seq_twice_in_two_partitions_stores_the_first(device):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=1)
    batch = [
        _reading(device, seq=1, at=_at(D0, 10), bpm=70),
        _reading(device, seq=2, at=_at(D0, 10, 1)),
        _reading(device, seq=1, at=_at(D0 + timedelta(days=1), 10), bpm=99),
    ]
    stored = readings_store(readings=batch)
    assert sorted((r.seq, r.value) for r in stored) == [(1, 70), (2, 80)]
    assert Reading.objects.filter(device=device).count() == 2
    assert ReadingKey.objects.filter(device_id=device.id).count() == 2


@postgres_only
@pytest.mark.django_db
def test_manual_readings_without_seq_have_no_key_and_are_all_stored(device):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=0)
    manual = [_reading(device, seq=None, at=_at(D0, 10)) for _ in range(3)]
    assert len(readings_store(readings=manual)) == 3
    assert not ReadingKey.objects.filter(device_id=device.id).exists()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_transactions_storing_one_key_in_two_partitions_store_it_once():
    device = DeviceFactory(patient=PatientFactory())
    readings_partitions_ensure()
    today = datetime.now(UTC).date()
    first_at, resend_at = _at(today, 0, 5), _at(today + timedelta(days=1), 0, 5)
    assert _table_of_day(first_at) != _table_of_day(resend_at)
    stored: dict[str, list] = {}
    first_inserted, release = threading.Event(), threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                stored["first"] = readings_store(readings=[_reading(device, seq=5, at=first_at)])
                first_inserted.set()
                release.wait(30)  # commit only once the resend waits on the key
        finally:
            connection.close()

    def resend() -> None:
        try:
            stored["resend"] = readings_store(readings=[_reading(device, seq=5, at=resend_at)])
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=resend)]
    threads[0].start()
    assert first_inserted.wait(30)
    threads[1].start()
    deadline = time.monotonic() + 30
    while not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)  # poll the server's view of the resend: blocked on the first's key
    assert _waiting_on_a_lock(), "the resend did not wait for the first transaction's key"
    release.set()
    for thread in threads:
        thread.join(30)
    assert len(stored["first"]) == 1 and stored["resend"] == []
    assert Reading.objects.filter(device=device).count() == 1


def _table_of_day(at: datetime) -> str:
    return partition_name(at.date())


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE %s)",
            ["%monitoring_readingkey%"],
        )
        return cursor.fetchone()[0]


# --- Partition pruning ----------------------------------------------------------------------


@postgres_only
@pytest.mark.django_db
def test_history_and_aggregation_read_only_the_partitions_of_their_window(device):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=3)
    day1, day2 = D0 + timedelta(days=1), D0 + timedelta(days=2)
    readings_store(
        readings=[
            _reading(device, seq=n, at=_at(D0, 12) + timedelta(hours=6 * n)) for n in range(1, 12)
        ]
    )
    patient = device.patient_id
    within = readings_history(patient_id=patient, start=_at(day1, 10), end=_at(day1, 12))
    assert _partitions_in_plan(within.explain()) == {partition_name(day1)}
    across = readings_history(
        patient_id=patient, start=_at(day1, 22), end=_at(day2, 2), metric="heart_rate"
    )
    assert _partitions_in_plan(across.explain()) == {partition_name(day1), partition_name(day2)}
    aggregate = readings_aggregate_query(
        patient_id=patient, start=_at(day1, 22), end=_at(day2, 2), bucket_seconds=60
    )
    assert _partitions_in_plan(aggregate.explain()) == {partition_name(day1), partition_name(day2)}
    # Unbounded, the history reads every partition, the default one too.
    everything = _partitions_in_plan(readings_history(patient_id=patient).explain())
    assert {partition_name(D0), partition_name(day2), DEFAULT_PARTITION} <= everything


@postgres_only
@pytest.mark.django_db
def test_the_history_endpoint_reads_only_the_partitions_of_its_window(nurse_api, device):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=3)
    day1, day2 = D0 + timedelta(days=1), D0 + timedelta(days=2)
    readings_store(
        readings=[
            _reading(device, seq=1, at=_at(day1, 23)),
            _reading(device, seq=2, at=_at(day2, 1)),
        ]
    )
    window = {"from": _at(day1, 22).isoformat(), "to": _at(day2, 2).isoformat()}
    with CaptureQueriesContext(connection) as captured:
        raw = nurse_api.get(f"/api/records/{device.patient_id}/", window)
        bucketed = nurse_api.get(f"/api/records/{device.patient_id}/", {**window, "bucket": 60})
    assert raw.status_code == 200 and [r["seq"] for r in raw.json()["results"]] == [2, 1]
    assert bucketed.status_code == 200 and len(bucketed.json()["results"]) == 2
    selects = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and '"monitoring_reading"' in q["sql"]
    ]
    assert len(selects) == 2
    for sql in selects:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert _partitions_in_plan(plan) == {partition_name(day1), partition_name(day2)}
