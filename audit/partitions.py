"""The audit table on PostgreSQL: month range partitions, the append-only trigger, the purge.

The same design as the readings (``monitoring/partitions.py``): declarative range partitions
on the record's time (``at``), here one per UTC month named ``audit_auditrecord_pYYYYMM``, and
a default partition that catches whatever no month partition holds, so a record is never
refused for lack of a partition. The maintenance task creates months ahead.

A trigger refuses every UPDATE and DELETE of a record, from any client of the database, unless
the transaction has set ``audit.purge`` to ``on`` (``SET LOCAL``), which only the retention
purge does. The purge drops the month partitions that lie wholly before the retention cutoff
and deletes older records left in the rest (the default partition, the month the cutoff falls
in), so it removes exactly the records older than ``AUDIT_RETENTION_DAYS``.

SQLite, the embedded default, keeps one plain table without the trigger; the purge deletes
there with a plain DELETE.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from audit.models import AuditRecord
from common.partitioned import table_partitioned

logger = logging.getLogger(__name__)

PARENT = AuditRecord._meta.db_table
DEFAULT_PARTITION = f"{PARENT}_default"
PURGE_SETTING = "audit.purge"
RETENTION_MINIMUM_DAYS = 365
_LOCK_KEY = 0x6175_6469  # "audi": one advisory lock for partition changes and the purge

TRIGGER_SQL = f"""
CREATE OR REPLACE FUNCTION {PARENT}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('{PURGE_SETTING}', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit records are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS {PARENT}_append_only ON {PARENT};
CREATE TRIGGER {PARENT}_append_only BEFORE UPDATE OR DELETE ON {PARENT}
    FOR EACH ROW EXECUTE FUNCTION {PARENT}_append_only();
"""


def month_start(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def partition_name(start: datetime) -> str:
    return f"{PARENT}_p{start:%Y%m}"


def postgres_partitioned() -> bool:
    """Whether the audit table is the partitioned one (PostgreSQL)."""
    return table_partitioned(PARENT)


def month_partition_create(cursor: CursorWrapper, *, start: datetime) -> bool:
    """Create one month's partition unless it exists, moving that month's records out of the
    default partition (PostgreSQL refuses the partition otherwise; the purge setting lets the
    move delete them there)."""
    name, end = partition_name(start), next_month(start)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    if cursor.fetchone()[0]:
        return False
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE at >= %s AND at < %s)",
        [start, end],
    )
    moved = cursor.fetchone()[0]
    if moved:
        cursor.execute(f"SET LOCAL {PURGE_SETTING} = 'on'")
        cursor.execute(
            "CREATE TEMPORARY TABLE audit_moved ON COMMIT DROP AS WITH d AS (DELETE FROM "
            f"{DEFAULT_PARTITION} WHERE at >= %s AND at < %s RETURNING *) SELECT * FROM d",
            [start, end],
        )
        cursor.execute(f"SET LOCAL {PURGE_SETTING} = 'off'")
    cursor.execute(
        f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM (%s) TO (%s)", [start, end]
    )
    if moved:
        cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM audit_moved")
        cursor.execute("DROP TABLE audit_moved")
    return True


def audit_partitions_ensure(*, now: datetime | None = None, ahead_months: int = 2) -> list[str]:
    """Create this month's partition and ``ahead_months`` more; returns the names created."""
    if not postgres_partitioned():
        return []
    start = month_start((now or timezone.now()).astimezone(UTC).date())
    created = []
    for _ in range(ahead_months + 1):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            if month_partition_create(cursor, start=start):
                created.append(partition_name(start))
        start = next_month(start)
    if created:
        logger.info("Created audit partitions %s", ", ".join(created))
    return created


def retention_days(days: int | None = None) -> int:
    days = settings.AUDIT_RETENTION_DAYS if days is None else days
    if days < RETENTION_MINIMUM_DAYS:
        raise ImproperlyConfigured(
            f"Audit records are kept at least {RETENTION_MINIMUM_DAYS} days (got {days})."
        )
    return days


@dataclass
class PurgeResult:
    cutoff: datetime
    dropped: list[str] = field(default_factory=list)
    deleted: int = 0


def _month_partitions(cursor: CursorWrapper) -> list[tuple[str, datetime]]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s) AND c.relname ~ %s",
        [PARENT, f"^{PARENT}_p[0-9]{{6}}$"],
    )
    found = []
    for (name,) in cursor.fetchall():
        stamp = name.rsplit("_p", 1)[1]
        found.append((name, datetime(int(stamp[:4]), int(stamp[4:]), 1, tzinfo=UTC)))
    return sorted(found, key=lambda item: item[1])


def audit_purge(*, now: datetime | None = None, days: int | None = None) -> PurgeResult:
    """Remove the records older than the retention (``AUDIT_RETENTION_DAYS``, at least 365
    days), and nothing else. One transaction: all of it or none."""
    cutoff = (now or timezone.now()) - timedelta(days=retention_days(days))
    result = PurgeResult(cutoff=cutoff)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            cursor.execute(f"SET LOCAL {PURGE_SETTING} = 'on'")
            if postgres_partitioned():
                for name, start in _month_partitions(cursor):
                    if next_month(start) <= cutoff:
                        cursor.execute(f"SELECT count(*) FROM {name}")
                        result.deleted += cursor.fetchone()[0]
                        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
                        cursor.execute(f"DROP TABLE {name}")
                        result.dropped.append(name)
        cursor.execute(f"DELETE FROM {PARENT} WHERE at < %s", [cutoff])
        result.deleted += cursor.rowcount
    logger.info(
        "Audit purge: %d records before %s removed (%d partitions dropped)",
        result.deleted,
        cutoff.isoformat(),
        len(result.dropped),
    )
    return result
