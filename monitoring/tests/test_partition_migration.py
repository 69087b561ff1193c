"""The migration that partitions a populated readings table by day (and back) on PostgreSQL;
SQLite keeps one plain table with its unique key."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from monitoring.models import Reading, ReadingKey
from monitoring.partitions import (
    partition_name,
    postgres_partitioned,
    readings_partitions,
    readings_partitions_ensure,
    readings_retention_apply,
)
from monitoring.readings import readings_store
from monitoring.tests.test_partitions import (
    D0,
    _at,
    _reading,
    _table_of,
    postgres_only,
    sqlite_only,
)
from testing.factories import DeviceFactory, PatientFactory


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
