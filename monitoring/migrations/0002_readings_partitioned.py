"""The readings table becomes range-partitioned by day on PostgreSQL; SQLite keeps its table.

On PostgreSQL an existing table is converted while ingest goes on: the partitioned table is
created beside it (same columns, foreign keys and indexes; primary key ``(id, recorded_at)``;
one partition per day from the oldest reading to a week ahead, and a default partition), the
rows are copied in batches of ``BATCH_ROWS`` by id, each batch in its own transaction together
with its ``(device_id, seq)`` idempotency keys, and at the end, under a lock that lets reads
through but holds writes for the last rows, the tables are swapped. Reversible the same way.
Deleting patients or devices while it runs is not carried into the copied rows: do not.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models, transaction

TABLE = "monitoring_reading"
KEYS = "monitoring_readingkey"
SWAP = "monitoring_reading_swap"
BATCH_ROWS = 50_000


def _fetch(cursor, sql, params=()):
    cursor.execute(sql, params)
    return cursor.fetchall()


def _relkind(cursor, name):
    rows = _fetch(cursor, "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [name])
    return rows[0][0] if rows else None


def _copy_structure(cursor, *, partitioned):
    """Create SWAP like TABLE, with its foreign keys and non-unique indexes under temporary
    names; returns {temporary name: final name} for the swap."""
    partition_by = " PARTITION BY RANGE (recorded_at)" if partitioned else ""
    cursor.execute(f"DROP TABLE IF EXISTS {SWAP} CASCADE")  # an earlier attempt cut short
    cursor.execute(
        f"CREATE TABLE {SWAP} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY "
        f"INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS){partition_by}"
    )
    renames = {f"{SWAP}_pkey": f"{TABLE}_pkey"}
    key = "id, recorded_at" if partitioned else "id"
    cursor.execute(f"ALTER TABLE {SWAP} ADD CONSTRAINT {SWAP}_pkey PRIMARY KEY ({key})")
    if not partitioned:
        cursor.execute(
            f"ALTER TABLE {SWAP} ADD CONSTRAINT {SWAP}_uq UNIQUE (device_id, seq)"
        )
        renames[f"{SWAP}_uq"] = "reading_device_seq_unique"
    foreign = _fetch(
        cursor,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype = 'f' ORDER BY conname",
        [TABLE],
    )
    for number, (name, definition) in enumerate(foreign):
        cursor.execute(f"ALTER TABLE {SWAP} ADD CONSTRAINT {SWAP}_fk{number} {definition}")
        renames[f"{SWAP}_fk{number}"] = name
    indexes = _fetch(
        cursor,
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(%s) "
        "AND NOT i.indisprimary AND NOT i.indisunique ORDER BY c.relname",
        [TABLE],
    )
    for number, (name, definition) in enumerate(indexes):
        method = definition[definition.index(" USING ") :]
        cursor.execute(f"CREATE INDEX {SWAP}_ix{number} ON {SWAP}{method}")
        renames[f"{SWAP}_ix{number}"] = name
    return renames


def _copy_rows(cursor, *, low, high, keys):
    conflict = "" if keys else " ON CONFLICT DO NOTHING"
    cursor.execute(
        f"INSERT INTO {SWAP} SELECT * FROM {TABLE} WHERE id >= %s AND id <= %s{conflict}",
        [low, high],
    )
    if keys:
        cursor.execute(
            f"INSERT INTO {KEYS} (device_id, seq) SELECT device_id, seq FROM {TABLE} "
            "WHERE id >= %s AND id <= %s AND device_id IS NOT NULL AND seq IS NOT NULL "
            "ON CONFLICT DO NOTHING",
            [low, high],
        )


def _convert(connection, *, partitioned):
    with connection.cursor() as cursor:
        if _relkind(cursor, TABLE) == ("p" if partitioned else "r"):
            return
        renames = _copy_structure(cursor, partitioned=partitioned)
        if partitioned:
            _create_partitions(cursor)
        # Once this SHARE lock is granted no write to the table is in flight, and every row
        # written after it gets a higher id: the rows up to `high` are all there to copy.
        with transaction.atomic(using=connection.alias):
            cursor.execute(f"LOCK TABLE {TABLE} IN SHARE MODE")
            low, high = _fetch(cursor, f"SELECT min(id), max(id) FROM {TABLE}")[0]
    if low is not None:
        for first in range(low, high + 1, BATCH_ROWS):
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                last = min(first + BATCH_ROWS - 1, high)
                _copy_rows(cursor, low=first, high=last, keys=partitioned)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # Reads go on; writes wait for the last rows and the swap.
        cursor.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
        _copy_rows(cursor, low=(high or 0) + 1, high=2**63 - 1, keys=partitioned)
        old_sequence = _fetch(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])[0][0]
        new_sequence = _fetch(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [SWAP])[0][0]
        last_value, called = _fetch(cursor, f"SELECT last_value, is_called FROM {old_sequence}")[0]
        cursor.execute("SELECT setval(%s, %s, %s)", [new_sequence, last_value, called])
        cursor.execute(f"DROP TABLE {TABLE}")
        cursor.execute(f"ALTER TABLE {SWAP} RENAME TO {TABLE}")
        cursor.execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {TABLE}_id_seq")
        for temporary, final in renames.items():
            if temporary.startswith(f"{SWAP}_ix"):
                cursor.execute(f"ALTER INDEX {temporary} RENAME TO {final}")
            else:
                cursor.execute(f"ALTER TABLE {TABLE} RENAME CONSTRAINT {temporary} TO {final}")
        if not partitioned:
            cursor.execute(f"TRUNCATE {KEYS}")


def _create_partitions(cursor):
    from monitoring.partitions import partition_create, partition_name

    cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {SWAP} DEFAULT")
    oldest = _fetch(cursor, f"SELECT min(recorded_at) FROM {TABLE}")[0][0]
    today = django.utils.timezone.now().astimezone(UTC).date()
    day = min(oldest.astimezone(UTC).date(), today) if oldest else today
    last = today + timedelta(days=settings.READINGS_PARTITIONS_AHEAD_DAYS)
    while day <= last:
        partition_create(cursor, day=day, parent=SWAP, name=partition_name(day))
        day += timedelta(days=1)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _convert(schema_editor.connection, partitioned=True)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _convert(schema_editor.connection, partitioned=False)


class Migration(migrations.Migration):
    # Each copy batch commits on its own (see the module docstring).
    atomic = False

    dependencies = [
        ("monitoring", "0001_initial"),
        ("clinical", "0004_device_and_place_members"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ReadingKey",
            fields=[
                ("pk", models.CompositePrimaryKey("device_id", "seq", blank=True, editable=False, primary_key=True, serialize=False)),
                ("device_id", models.BigIntegerField()),
                ("seq", models.BigIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name="ReadingArchive",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("metric", models.CharField(choices=[("heart_rate", "Heart rate"), ("fetal_heart_rate", "Fetal heart rate")], max_length=20)),
                ("bpm", models.SmallIntegerField()),
                ("recorded_at", models.DateTimeField()),
                ("received_at", models.DateTimeField()),
                ("seq", models.BigIntegerField(blank=True, null=True)),
                ("archived_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("device", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="clinical.device")),
                ("entered_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("patient", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="clinical.patient")),
            ],
            options={
                "ordering": ("-recorded_at", "-id"),
                "indexes": [models.Index(fields=["patient", "recorded_at"], name="readingarchive_patient_time")],
            },
        ),
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
