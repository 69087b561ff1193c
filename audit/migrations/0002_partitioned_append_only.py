"""On PostgreSQL the audit table becomes range-partitioned by month (primary key (id, at),
a default partition, this month and the next two), and a trigger refuses UPDATE and DELETE
except inside the retention purge (audit/partitions.py). The table is new and empty here, so
it is swapped for its partitioned twin directly. SQLite keeps the plain table."""

from __future__ import annotations

from django.db import migrations
from django.utils import timezone

TABLE = "audit_auditrecord"
SWAP = "audit_auditrecord_swap"
INDEXES = {
    "audit_at": "(at)",
    "audit_patient_at": "(patient_id, at)",
    "audit_actor_at": "(actor_type, actor_id, at)",
}


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from audit.partitions import TRIGGER_SQL, audit_partitions_ensure

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {SWAP} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY "
            "INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE (at)"
        )
        cursor.execute(f"DROP TABLE {TABLE}")
        cursor.execute(f"ALTER TABLE {SWAP} RENAME TO {TABLE}")
        cursor.execute(f"ALTER SEQUENCE IF EXISTS {SWAP}_id_seq RENAME TO {TABLE}_id_seq")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, at)")
        for name, columns in INDEXES.items():
            cursor.execute(f"CREATE INDEX {name} ON {TABLE} {columns}")
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        cursor.execute(TRIGGER_SQL)
    audit_partitions_ensure(now=timezone.now())


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        cursor.execute(f"DROP FUNCTION IF EXISTS {TABLE}_append_only()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
