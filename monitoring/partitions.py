"""The readings table's daily range partitions on PostgreSQL, and retention by whole partition.

On PostgreSQL ``monitoring_reading`` is partitioned by ``recorded_at`` (declarative range
partitions, one per UTC day, named ``monitoring_reading_pYYYYMMDD``) with a default partition
(``monitoring_reading_default``) that catches readings outside every day partition: a clock far
in the past, or days the maintenance task did not create in time. Nothing is ever refused for
lack of a partition; creating a day moves the default partition's rows of that day into it.

Retention (``READINGS_RETENTION_DAYS``, off by default) detaches whole day partitions older
than the limit, copies the readings around any alert into ``monitoring_readingarchive``,
deletes the dropped readings' idempotency keys and drops the table. A run interrupted after the
detach is finished by the next one (a detached day partition is recognised by its name).

SQLite, the embedded default, keeps one plain table: every function here is a no-op there.
Steps run in short transactions of their own, each taking one advisory lock, so two runs at
once (the beat task and an operator's command) interleave safely.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from common.partitioned import table_partitioned
from monitoring.models import Reading, ReadingArchive, ReadingKey

logger = logging.getLogger(__name__)

PARENT = Reading._meta.db_table
DEFAULT_PARTITION = f"{PARENT}_default"
KEYS = ReadingKey._meta.db_table
ARCHIVE = ReadingArchive._meta.db_table
_DAY_NAME = re.compile(r"_p(\d{8})$")
_BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
# One lock for every step that changes the partitions or their keys (the key of
# pg_advisory_xact_lock; any constant of this project's own).
_LOCK_KEY = 0x7265_6164  # "read"
_LOCK_TIMEOUT = "5s"  # a DDL step that waits longer for its lock gives up; the next run retries
BATCH_ROWS = 50_000  # rows per transaction when copying or deleting keys


def postgres_partitioned() -> bool:
    """Whether the readings table is the partitioned one (PostgreSQL after migration 0002)."""
    return table_partitioned(PARENT)


def partition_name(day: date, *, parent: str = PARENT) -> str:
    return f"{parent}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime | None  # None for the default partition
    end: datetime | None
    rows: int  # the planner's estimate (pg_class.reltuples), -1 before the first ANALYZE

    @property
    def is_default(self) -> bool:
        return self.start is None


def readings_partitions(*, parent: str = PARENT) -> list[Partition]:
    """The attached partitions, oldest first, the default partition last."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [parent],
        )
        rows = cursor.fetchall()
    partitions = []
    for name, bound, tuples in rows:
        match = _BOUNDS.search(bound)
        if match is None:
            partitions.append(Partition(name=name, start=None, end=None, rows=tuples))
        else:
            start, end = (datetime.fromisoformat(value) for value in match.groups())
            partitions.append(Partition(name=name, start=start, end=end, rows=tuples))
    partitions.sort(key=lambda p: (p.start is None, p.start or datetime.min.replace(tzinfo=UTC)))
    return partitions


def _locked(cursor: CursorWrapper) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    cursor.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")


def partition_create(
    cursor: CursorWrapper, *, day: date, parent: str = PARENT, name: str | None = None
) -> bool:
    """Create the partition of one UTC day unless it exists, in the caller's transaction.

    Readings of that day waiting in the default partition move into the new one (PostgreSQL
    refuses to create a partition whose rows sit in the default partition). Returns whether it
    created the partition.
    """
    name = name or partition_name(day, parent=parent)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    if cursor.fetchone()[0]:
        return False
    start, end = day_start(day), day_start(day + timedelta(days=1))
    default = f"{parent}_default"
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [default])
    has_default = cursor.fetchone()[0]
    moved = False
    if has_default:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {default} WHERE recorded_at >= %s AND recorded_at < %s)",
            [start, end],
        )
        moved = cursor.fetchone()[0]
    if moved:
        cursor.execute(
            f"CREATE TEMPORARY TABLE readings_moved ON COMMIT DROP AS "
            f"WITH d AS (DELETE FROM {default} WHERE recorded_at >= %s AND recorded_at < %s "
            f"RETURNING *) SELECT * FROM d",
            [start, end],
        )
    cursor.execute(
        f"CREATE TABLE {name} PARTITION OF {parent} FOR VALUES FROM (%s) TO (%s)", [start, end]
    )
    if moved:
        cursor.execute(f"INSERT INTO {parent} SELECT * FROM readings_moved")
        cursor.execute("DROP TABLE readings_moved")
        logger.info("Moved the default partition's readings of %s into %s", day, name)
    return True


def readings_partitions_ensure(
    *, now: datetime | None = None, ahead_days: int | None = None, since: date | None = None
) -> list[str]:
    """Create the day partitions from ``since`` (default: today, UTC) to ``ahead_days`` days
    after today; returns the names created. Idempotent; each day in its own transaction."""
    if not postgres_partitioned():
        return []
    today = (now or timezone.now()).astimezone(UTC).date()
    ahead = settings.READINGS_PARTITIONS_AHEAD_DAYS if ahead_days is None else ahead_days
    day = min(since or today, today)
    created = []
    while day <= today + timedelta(days=ahead):
        with transaction.atomic(), connection.cursor() as cursor:
            _locked(cursor)
            if partition_create(cursor, day=day):
                created.append(partition_name(day))
        day += timedelta(days=1)
    if created:
        logger.info("Created readings partitions %s", ", ".join(created))
    return created


# --- Retention ------------------------------------------------------------------------------

# name -> spans(start=, end=) -> [(patient id, from, to or None while it lasts)]: the periods
# whose readings outlive retention, registered by higher apps (alerts: each alert from raise
# to resolve) in their ready(); retention widens each by the archive margins.
KeepSpans = Callable[..., Iterable[tuple[int, datetime, datetime | None]]]
retention_keep: dict[str, KeepSpans] = {}


def retention_keep_register(name: str, spans: KeepSpans) -> None:
    retention_keep[name] = spans


@dataclass
class RetentionResult:
    cutoff: datetime | None = None
    dropped: list[str] = field(default_factory=list)
    archived: int = 0
    keys_deleted: int = 0
    default_rows_deleted: int = 0
    skipped: str = ""  # why nothing ran, for the command's output


def retention_cutoff(*, now: datetime, days: int) -> datetime:
    """Readings recorded before this are past retention: whole UTC days, so that a day
    partition goes as one piece once its last reading is older than ``days`` days."""
    return day_start(now.astimezone(UTC).date() - timedelta(days=days))


def readings_retention_apply(
    *, now: datetime | None = None, days: int | None = None
) -> RetentionResult:
    """Drop the day partitions older than ``days`` (default ``READINGS_RETENTION_DAYS``; 0 or
    unset: keep everything), after copying the readings around alerts to the archive."""
    days = settings.READINGS_RETENTION_DAYS if days is None else days
    if not days:
        return RetentionResult(skipped="retention is off (READINGS_RETENTION_DAYS is 0)")
    if not postgres_partitioned():
        return RetentionResult(skipped="the readings table is not partitioned (PostgreSQL only)")
    now = now or timezone.now()
    result = RetentionResult(cutoff=retention_cutoff(now=now, days=days))
    cutoff = result.cutoff
    assert cutoff is not None
    for partition in readings_partitions():
        if partition.end is not None and partition.end <= cutoff:
            _partition_detach(partition.name)
    for name, start, end in _detached_partitions():
        if end > cutoff:
            continue  # detached by someone else for another reason: not retention's to drop
        result.archived += _archive_copy(table=name, start=start, end=end, now=now)
        result.keys_deleted += _keys_delete(table=name)
        with transaction.atomic(), connection.cursor() as cursor:
            _locked(cursor)
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
        result.dropped.append(name)
        logger.info("Retention dropped %s (readings before %s)", name, cutoff.isoformat())
    _default_expire(result, cutoff=cutoff, now=now)
    return result


def _partition_detach(name: str) -> None:
    # DETACH takes a brief exclusive lock on the parent (CONCURRENTLY is not allowed while a
    # default partition exists); lock_timeout keeps it from queueing ingest behind a long query.
    with transaction.atomic(), connection.cursor() as cursor:
        _locked(cursor)
        cursor.execute(
            "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s) "
            "AND inhparent = to_regclass(%s)",
            [name, PARENT],
        )
        if cursor.fetchone() is not None:
            cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")


def _detached_partitions() -> list[tuple[str, datetime, datetime]]:
    """Day partitions detached by retention and not yet dropped (also after a crash)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relispartition "
            "AND c.relname ~ %s",
            [f"^{PARENT}_p[0-9]{{8}}$"],
        )
        names = sorted(row[0] for row in cursor.fetchall())
    detached = []
    for name in names:
        match = _DAY_NAME.search(name)
        assert match is not None
        day = datetime.strptime(match.group(1), "%Y%m%d").date()
        detached.append((name, day_start(day), day_start(day + timedelta(days=1))))
    return detached


def _keep_windows(
    *, start: datetime, end: datetime, now: datetime
) -> tuple[list[int], list[datetime], list[datetime]]:
    """Per patient, the time windows in [start, end) whose readings go to the archive."""
    before = timedelta(minutes=settings.READINGS_ARCHIVE_BEFORE_MINUTES)
    after = timedelta(minutes=settings.READINGS_ARCHIVE_AFTER_MINUTES)
    patients: list[int] = []
    froms: list[datetime] = []
    tos: list[datetime] = []
    for spans in retention_keep.values():
        for patient_id, span_start, span_end in spans(start=start - after, end=end + before):
            patients.append(patient_id)
            froms.append(span_start - before)
            tos.append((span_end or now) + after)
    return patients, froms, tos


def _archive_columns() -> str:
    return ", ".join(
        str(f.column) for f in ReadingArchive._meta.concrete_fields if f.name != "archived_at"
    )


def _archive_copy(
    *, table: str, start: datetime, end: datetime, now: datetime, where: str = "TRUE"
) -> int:
    patients, froms, tos = _keep_windows(start=start, end=end, now=now)
    if not patients:
        return 0
    columns = _archive_columns()
    selected = ", ".join(f"r.{c}" for c in columns.split(", "))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ARCHIVE} ({columns}, archived_at) SELECT DISTINCT {selected}, %s "
            f"FROM {table} r JOIN unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) "
            "AS w(patient_id, from_at, to_at) ON r.patient_id = w.patient_id "
            f"AND r.recorded_at >= w.from_at AND r.recorded_at < w.to_at WHERE {where} "
            "ON CONFLICT (id) DO NOTHING",
            [now, patients, froms, tos],
        )
        return int(cursor.rowcount)


def _keys_delete(*, table: str, where: str = "TRUE") -> int:
    """Delete the idempotency keys of the readings in ``table``, a batch per transaction."""
    deleted = 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(r.id), max(r.id) FROM {table} r WHERE {where}")
        low, high = cursor.fetchone()
    if low is None:
        return 0
    for first in range(low, high + 1, BATCH_ROWS):
        with transaction.atomic(), connection.cursor() as cursor:
            _locked(cursor)
            cursor.execute(
                f"DELETE FROM {KEYS} k USING {table} r WHERE r.id >= %s AND r.id < %s "
                f"AND {where} AND k.device_id = r.device_id AND k.seq = r.seq",
                [first, first + BATCH_ROWS],
            )
            deleted += cursor.rowcount
    return deleted


def _default_expire(result: RetentionResult, *, cutoff: datetime, now: datetime) -> None:
    """Readings past retention in the default partition (recorded far in the past, hence
    few): archived like the others, then deleted as rows, since the partition stays."""
    where = f"r.recorded_at < '{cutoff.isoformat()}'::timestamptz"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(recorded_at) FROM {DEFAULT_PARTITION} r WHERE {where}")
        oldest = cursor.fetchone()[0]
    if oldest is None:
        return
    result.archived += _archive_copy(
        table=DEFAULT_PARTITION, start=oldest, end=cutoff, now=now, where=where
    )
    result.keys_deleted += _keys_delete(table=DEFAULT_PARTITION, where=where)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {DEFAULT_PARTITION} r WHERE {where}")
        result.default_rows_deleted += cursor.rowcount
