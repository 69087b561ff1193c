"""The readings table's day partitions on PostgreSQL: creation ahead of time, retention by whole
partition with the readings around alerts archived, idempotency across partitions, partition
pruning of the history and aggregation queries, and the migration of a populated table.
SQLite keeps one plain table (the tests at the end)."""

from __future__ import annotations

import importlib
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert
from monitoring.models import Reading, ReadingArchive, ReadingKey
from monitoring.partitions import (
    DEFAULT_PARTITION,
    partition_name,
    postgres_partitioned,
    readings_partitions,
    readings_partitions_ensure,
    readings_retention_apply,
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
    return ReadingInFactory(device=device, seq=seq, recorded_at=at, bpm=bpm)


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
    assert sorted((r.seq, r.bpm) for r in stored) == [(1, 70), (2, 80)]
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


# --- Retention ------------------------------------------------------------------------------


@postgres_only
@pytest.mark.django_db
def test_retention_is_off_by_default(device):
    assert settings.READINGS_RETENTION_DAYS == 0
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=0)
    readings_store(readings=[_reading(device, seq=1, at=_at(D0, 10))])
    result = readings_retention_apply(now=_at(D0 + timedelta(days=400), 0))
    assert result.dropped == [] and "off" in result.skipped
    assert _exists(partition_name(D0)) and Reading.objects.count() == 1


@postgres_only
@pytest.mark.django_db
def test_retention_drops_whole_old_days_after_archiving_the_readings_around_alerts(settings):
    settings.READINGS_ARCHIVE_BEFORE_MINUTES = 60
    settings.READINGS_ARCHIVE_AFTER_MINUTES = 30
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=2)
    day1, day2 = D0 + timedelta(days=1), D0 + timedelta(days=2)
    patient = PatientFactory()
    alerted, other = DeviceFactory(patient=patient), DeviceFactory(patient=PatientFactory())
    # The alert was open 10:00-10:30 on D0: readings from 09:00 to 11:00 are kept.
    Alert.objects.create(
        patient=patient,
        kind="bradycardia",
        priority="high",
        state="resolved",
        message="low",
        raised_at=_at(D0, 10),
        resolved_at=_at(D0, 10, 30),
    )
    # A second one raised late on day1 and still open keeps day1's evening to the end.
    Alert.objects.create(
        patient=patient,
        kind="device_offline",
        priority="medium",
        message="offline",
        raised_at=_at(day1, 23, 30),
    )
    times = {
        "early": _at(D0, 8, 59),
        "before": _at(D0, 9, 0),
        "during": _at(D0, 10, 15),
        "after": _at(D0, 10, 59),
        "late": _at(D0, 11, 0),
        "day1 noon": _at(day1, 12),
        "day1 evening": _at(day1, 22, 45),
        "day2": _at(day2, 9),
    }
    ids = {}
    for seq, (label, at) in enumerate(times.items(), start=1):
        [row] = readings_store(readings=[_reading(alerted, seq=seq, at=at)])
        ids[label] = row.id
    [other_row] = readings_store(readings=[_reading(other, seq=1, at=_at(D0, 10, 15))])

    # Thirty days' retention, three days later than D0 + 30: D0 and day1 are past it.
    now = _at(day2 + timedelta(days=30), 8)
    _checks_done()
    with CaptureQueriesContext(connection) as captured:
        result = readings_retention_apply(now=now, days=30)

    assert result.dropped == [partition_name(D0), partition_name(day1)]
    assert not _exists(partition_name(D0)) and not _exists(partition_name(day1))
    assert _exists(partition_name(day2))
    archived = set(ReadingArchive.objects.values_list("id", flat=True))
    assert archived == {ids["before"], ids["during"], ids["after"], ids["day1 evening"]}
    assert result.archived == 4
    copy = ReadingArchive.objects.get(id=ids["during"])
    assert (copy.patient_id, copy.device_id, copy.seq, copy.bpm) == (
        alerted.patient_id,
        alerted.id,
        3,
        80,
    )
    assert copy.recorded_at == times["during"] and copy.archived_at == now
    assert list(Reading.objects.values_list("id", flat=True)) == [ids["day2"]]
    assert other_row.id not in archived
    # The dropped readings' keys went with them, the living reading's key stayed.
    assert set(ReadingKey.objects.values_list("device_id", "seq")) == {(alerted.id, 8)}
    assert result.keys_deleted == 8
    # Never a row-by-row delete of readings: the partitions went as a whole.
    statements = [q["sql"] for q in captured.captured_queries]
    assert not [s for s in statements if s.startswith("DELETE FROM monitoring_reading ")]
    assert any("DETACH PARTITION monitoring_reading_p20250310" in s for s in statements)
    # A second run has nothing left to do.
    again = readings_retention_apply(now=now, days=30)
    assert again.dropped == [] and again.archived == 0


@postgres_only
@pytest.mark.django_db
def test_retention_finishes_a_partition_detached_by_a_run_that_stopped(device):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=0)
    readings_store(readings=[_reading(device, seq=1, at=_at(D0, 10))])
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE monitoring_reading DETACH PARTITION {partition_name(D0)}")
    _checks_done()
    result = readings_retention_apply(now=_at(D0 + timedelta(days=10), 0), days=5)
    assert result.dropped == [partition_name(D0)]
    assert not _exists(partition_name(D0)) and not ReadingKey.objects.exists()


@postgres_only
@pytest.mark.django_db
def test_retention_leaves_a_detached_day_that_is_not_past_retention(device):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=0)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE monitoring_reading DETACH PARTITION {partition_name(D0)}")
    result = readings_retention_apply(now=_at(D0 + timedelta(days=3), 0), days=5)
    assert result.dropped == [] and _exists(partition_name(D0))


@postgres_only
@pytest.mark.django_db
def test_retention_expires_old_rows_of_the_default_partition_and_keeps_newer_ones(device):
    old, recent = _at(date(2019, 5, 1), 10), _at(date(2019, 6, 20), 10)
    Alert.objects.create(
        patient_id=device.patient_id,
        kind="tachycardia",
        priority="low",
        state="resolved",
        message="m",
        raised_at=old + timedelta(minutes=5),
        resolved_at=old + timedelta(minutes=10),
    )
    kept, archived_only = readings_store(
        readings=[_reading(device, seq=1, at=recent), _reading(device, seq=2, at=old)]
    )
    result = readings_retention_apply(now=_at(date(2019, 6, 25), 0), days=30)
    assert result.default_rows_deleted == 1
    assert list(Reading.objects.values_list("id", flat=True)) == [kept.id]
    assert list(ReadingArchive.objects.values_list("id", flat=True)) == [archived_only.id]
    assert list(ReadingKey.objects.values_list("seq", flat=True)) == [1]


@postgres_only
@pytest.mark.django_db
def test_the_command_creates_partitions_and_applies_retention(device, capsys):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=0)
    readings_store(readings=[_reading(device, seq=1, at=_at(D0, 10))])
    _checks_done()
    call_command("readings_partitions", "--ahead", "9", "--retention", "--days", "60")
    out = capsys.readouterr().out
    today = datetime.now(UTC).date()
    assert f"created {partition_name(today + timedelta(days=9))}" in out
    assert f"dropped {partition_name(D0)}" in out
    assert "monitoring_reading_default  default" in out


# --- The migration --------------------------------------------------------------------------


def _migrate(target: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(target)


def _leaf() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _partitions_drop_before(day: date) -> None:
    """This committed test's day partitions go again (its rows are flushed after it)."""
    with connection.cursor() as cursor:
        for partition in readings_partitions():
            if partition.end is not None and partition.end <= _at(day, 0):
                cursor.execute(f"DROP TABLE {partition.name}")


def _constraints() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'monitoring_reading'::regclass"
        )
        return dict(cursor.fetchall())


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'monitoring_reading'")
        return {row[0] for row in cursor.fetchall()}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_migration_partitions_a_populated_table_and_back(monkeypatch):
    migration = importlib.import_module("monitoring.migrations.0002_readings_partitioned")
    monkeypatch.setattr(migration, "BATCH_ROWS", 7)  # several batches from a few rows
    today = datetime.now(UTC).date()
    day0 = today - timedelta(days=5)  # the migration makes a partition per day since the oldest
    device = DeviceFactory(patient=PatientFactory())
    manual_patient = PatientFactory()
    indexes_before = _indexes()
    try:
        _migrate([("monitoring", "0001_initial")])
        assert not postgres_partitioned()
        with connection.cursor() as cursor:
            for seq in range(1, 41):  # 40 device readings over 4 days, 5 manual ones
                cursor.execute(
                    "INSERT INTO monitoring_reading (patient_id, device_id, metric, bpm, "
                    "recorded_at, received_at, seq) VALUES (%s, %s, 'heart_rate', %s, %s, %s, %s)",
                    [
                        device.patient_id,
                        device.id,
                        60 + seq,
                        _at(day0, 0) + timedelta(hours=2.4 * seq),
                        _at(day0, 0),
                        seq,
                    ],
                )
            for n in range(5):
                cursor.execute(
                    "INSERT INTO monitoring_reading (patient_id, metric, bpm, recorded_at, "
                    "received_at) VALUES (%s, 'heart_rate', 70, %s, %s)",
                    [manual_patient.id, _at(day0, 5, n), _at(day0, 5, n)],
                )
            cursor.execute(
                "SELECT id, device_id, seq, bpm, recorded_at FROM monitoring_reading ORDER BY id"
            )
            before = cursor.fetchall()

        # A reading that arrives while the batches are copied is there after the swap.
        copy_rows = migration._copy_rows
        late: list[int] = []

        def copy_rows_with_a_write_in_between(cursor, **kwargs):
            copy_rows(cursor, **kwargs)
            if not late:
                cursor.execute(
                    "INSERT INTO monitoring_reading (patient_id, device_id, metric, bpm, recorded_at, "
                    "received_at, seq) VALUES (%s, %s, 'heart_rate', 99, %s, %s, 41) RETURNING id",
                    [device.patient_id, device.id, _at(day0, 9), _at(day0, 9)],
                )
                late.append(cursor.fetchone()[0])

        monkeypatch.setattr(migration, "_copy_rows", copy_rows_with_a_write_in_between)
        _migrate(_leaf())
        monkeypatch.setattr(migration, "_copy_rows", copy_rows)

        assert postgres_partitioned()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, device_id, seq, bpm, recorded_at FROM monitoring_reading ORDER BY id"
            )
            after = cursor.fetchall()
        assert after == sorted([*before, (late[0], device.id, 41, 99, _at(day0, 9))])
        assert _table_of(before[0][0]) == partition_name(day0)
        assert _table_of(before[39][0]) == partition_name(day0 + timedelta(days=4))
        constraints = _constraints()
        assert constraints["monitoring_reading_pkey"] == "PRIMARY KEY (id, recorded_at)"
        assert "reading_device_seq_unique" not in constraints
        assert {
            name for name, definition in constraints.items() if definition.startswith("FOREIGN KEY")
        } == {
            name
            for name in constraints
            if name.endswith(
                ("_fk_monitoring_device_id", "_fk_clinical_patient_id", "_fk_accounts_user_id")
            )
        }
        assert len([d for d in constraints.values() if d.startswith("FOREIGN KEY")]) == 3
        assert _indexes() == indexes_before
        assert ReadingKey.objects.filter(device_id=device.id).count() == 41
        # Idempotency holds for the copied rows; new rows continue the ids.
        assert readings_store(readings=[_reading(device, seq=40, at=_at(day0, 1))]) == []
        [new] = readings_store(readings=[_reading(device, seq=42, at=_at(day0, 1))])
        assert new.id > late[0]

        # And back: one plain table with its unique key, the same rows.
        _migrate([("monitoring", "0001_initial")])
        assert not postgres_partitioned()
        constraints = _constraints()
        assert constraints["reading_device_seq_unique"] == "UNIQUE (device_id, seq)"
        assert constraints["monitoring_reading_pkey"] == "PRIMARY KEY (id)"
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*), max(id) FROM monitoring_reading")
            assert cursor.fetchone() == (len(after) + 1, new.id)
    finally:
        if not postgres_partitioned():
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM monitoring_reading")  # the plain table of 0001
        _migrate(_leaf())
        _partitions_drop_before(today)
    assert postgres_partitioned()


# --- SQLite: one plain table ----------------------------------------------------------------


@sqlite_only
@pytest.mark.django_db
def test_sqlite_keeps_one_plain_table_with_its_unique_key(device):
    assert not postgres_partitioned()
    assert readings_partitions_ensure(now=_at(D0, 0)) == []
    assert "PostgreSQL only" in readings_retention_apply(days=30).skipped
    with pytest.raises(CommandError, match="not partitioned"):
        call_command("readings_partitions")
    [first] = readings_store(readings=[_reading(device, seq=1, at=_at(D0, 10))])
    assert (
        readings_store(readings=[_reading(device, seq=1, at=_at(D0 + timedelta(days=3), 10))]) == []
    )
    assert list(Reading.objects.values_list("id", flat=True)) == [first.id]
    assert not ReadingKey.objects.exists()
