from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from django.db import connection, transaction
from django.db.models import (
    Avg,
    Count,
    DateTimeField,
    Func,
    Max,
    Min,
    Q,
    QuerySet,
)
from django.db.models.functions import Mod

from accounts.models import User
from clinical.models import Device
from clinical.selectors import (
    patients_visible,
)
from ctg.analysis import CtgParams, per_second
from ctg.maternal import maternal_channel
from ctg.window import CTG_WINDOW, CtgReading, ctg_read
from monitoring.models import Metric, Reading, StreamReplay
from monitoring.readings import StoredReading, Target
from monitoring.stream.entries import partitions

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

_Sql = tuple[str, tuple[str | int, ...]]  # an expression's SQL and its parameters


def device_target(device: Device) -> Target | None:
    """Where this device's readings go, or None when it has no patient."""
    patient = device.patient
    if patient is None:
        return None
    return Target(
        patient_id=patient.id,
        place_id=patient.place_id,
        ward_id=patient.ward_id,
        profile=patient.monitoring_profile,
        device_id=device.id,
    )


def patient_targets(*, user: User, patient_ids: Iterable[int]) -> dict[int, Target]:
    """Ingest targets of the patients among ``patient_ids`` that the person may see (one query)."""
    rows = patients_visible(user=user).select_related(None).filter(id__in=set(patient_ids))
    return {
        p.id: Target(
            patient_id=p.id, place_id=p.place_id, ward_id=p.ward_id, profile=p.monitoring_profile
        )
        for p in rows.only("id", "place_id", "ward_id", "monitoring_profile")
    }


def readings_history(
    *,
    patient_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    metric: str | None = None,
) -> QuerySet[Reading]:
    qs = Reading.objects.filter(patient_id=patient_id)
    if start is not None:
        qs = qs.filter(recorded_at__gte=start)
    if end is not None:
        qs = qs.filter(recorded_at__lt=end)
    if metric:
        qs = qs.filter(metric=metric)
    return qs


def reading_get(*, reading_id: int) -> Reading | None:
    return Reading.objects.filter(id=reading_id).first()


AGGREGATE_WORK_MEM = "64MB"


class _TimeBucket(Func):
    """The start of the ``size``-second bucket a timestamp falls in, aligned to the epoch.

    PostgreSQL: ``date_bin`` (PostgreSQL 14+, as Django 5.2 requires), which groups faster
    than epoch arithmetic on ``numeric``. SQLite: the UTC text Django stores, converted to
    epoch seconds, floored, and back to a date-time.
    """

    output_field = DateTimeField()

    def __init__(self, expression: Any, size: int) -> None:
        self.size = int(size)
        super().__init__(expression)

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        *args: Any,
        **extra_context: Any,
    ) -> NoReturn:
        raise NotImplementedError(f"Time buckets are not implemented for {connection.vendor}.")

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> _Sql:
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"date_bin(interval '{self.size} seconds', {sql}, timestamptz '1970-01-01 00:00:00+00')",
            params,
        )

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> _Sql:
        sql, params = compiler.compile(self.source_expressions[0])
        size = self.size
        # Epochs after 1970 are positive, so integer division floors.
        return (
            f"datetime((CAST(strftime('%%s', {sql}) AS INTEGER) / {size}) * {size}, 'unixepoch')",
            params,
        )


def readings_aggregate_query(
    *,
    patient_id: int,
    start: datetime,
    end: datetime,
    bucket_seconds: int,
    metric: str | None = None,
) -> QuerySet[Any, Any]:
    """The statement behind ``readings_aggregate`` (bounded by time on both sides, so on
    PostgreSQL it reads only the day partitions of its window)."""
    return (
        readings_history(patient_id=patient_id, start=start, end=end, metric=metric)
        .order_by()
        .annotate(bucket=_TimeBucket("recorded_at", bucket_seconds))
        .values("bucket", "metric")
        .annotate(min=Min("value"), max=Max("value"), mean=Avg("value"), count=Count("*"))
        .order_by("bucket", "metric")
    )


def readings_aggregate(
    *,
    patient_id: int,
    start: datetime,
    end: datetime,
    bucket_seconds: int,
    metric: str | None = None,
) -> list[dict[str, Any]]:
    """Per time bucket and metric: min, max, mean and count, computed by the database.

    Buckets are aligned to the epoch (a 60 s bucket starts on a whole minute) and ordered
    oldest first, the order a chart draws them.
    """
    query = readings_aggregate_query(
        patient_id=patient_id, start=start, end=end, bucket_seconds=bucket_seconds, metric=metric
    )
    if connection.vendor == "postgresql":
        # The planner cannot estimate how few buckets there are, sizes a hash table for one
        # per row and, over the default work_mem, sorts 345,600 rows on disk for a day at 4 Hz.
        # More memory for this one statement (SET LOCAL ends with the transaction) lets it
        # hash-aggregate in memory: about twice as fast.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")
            rows = list(query)
    else:
        rows = list(query)
    return [
        {
            "bucket_start": row["bucket"],
            "metric": row["metric"],
            "min": row["min"],
            "max": row["max"],
            "mean": round(float(row["mean"]), 2),
            "count": row["count"],
        }
        for row in rows
    ]


# --- CTG ----------------------------------------------------------------------------------


# The cardiotocogram's channels and the mother's heart rate (ECG, else a pulse), which the
# maternal-capture check compares the fetal channel with (``ctg.maternal``).
CTG_METRICS = (
    Metric.FETAL_HEART_RATE,
    Metric.UTERINE_ACTIVITY,
    Metric.HEART_RATE,
    Metric.PULSE_RATE,
)


def readings_per_second(
    *,
    patient_id: int,
    start: datetime,
    end: datetime,
    metrics: Sequence[str] = CTG_METRICS,
) -> dict[str, list[tuple[float, float]]]:
    """Per metric, the readings of [start, end) as ``(epoch seconds, value)``, in no
    particular order, without a model instance per row: what the CTG analysis reads.

    The database averages each second already (the analysis works on a one-second grid), so
    a 2-hour window at 4 Hz (28,800 readings per metric) comes back as 7,200 rows per metric.
    """
    table = Reading._meta.db_table  # its column ``bpm`` is ``Reading.value``
    placeholders = ", ".join(["%s"] * len(metrics))
    where = (
        f"FROM {table} WHERE patient_id = %s AND metric IN ({placeholders}) "
        "AND recorded_at >= %s AND recorded_at < %s"
    )
    ops = connection.ops
    params = [
        patient_id,
        *metrics,
        ops.adapt_datetimefield_value(start),
        ops.adapt_datetimefield_value(end),
    ]
    series: dict[str, list[tuple[float, float]]] = {m: [] for m in metrics}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Grouped by the truncated timestamp, converted to epoch seconds once per group
            # (extract() returns numeric, slow per row); the average in float8 for the same
            # reason.
            cursor.execute(
                "SELECT metric, extract(epoch from date_trunc('second', recorded_at))::float8, "
                f"avg(bpm::float8) {where} GROUP BY metric, date_trunc('second', recorded_at)",
                params,
            )
            for metric, epoch, mean in cursor.fetchall():
                series[metric].append((float(epoch), float(mean)))
        else:
            # SQLite keeps UTC text ("2026-11-25 10:00:00.250000"); its date functions cost
            # more per row than grouping by the text of the whole second and reading that
            # text here (one date parse per day).
            cursor.execute(
                f"SELECT metric, substr(recorded_at, 1, 19) AS s, AVG(bpm) {where} "
                "GROUP BY metric, s",
                params,
            )
            days: dict[str, float] = {}
            for metric, text, mean in cursor.fetchall():
                day = text[:10]
                if day not in days:
                    days[day] = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
                clock = int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])
                series[metric].append((days[day] + clock, float(mean)))
    return series


def patient_ctg(
    *,
    patient_id: int,
    end: datetime,
    start: datetime | None = None,
    params: CtgParams | None = None,
) -> CtgReading:
    """The reading of a patient's CTG window ending at ``end`` (whole seconds), as the alarm
    evaluator reads it (``ctg.window``: the same window, look-back and monitored time); the
    window is ``CTG_WINDOW``'s 30 minutes unless ``start`` says otherwise."""
    window = (
        CTG_WINDOW if start is None else CTG_WINDOW.of_length(round((end - start).total_seconds()))
    )
    grid_start = end - timedelta(seconds=window.span_seconds)
    series = readings_per_second(
        patient_id=patient_id,
        start=grid_start,
        end=end,
        metrics=CTG_METRICS,
    )
    first, last = grid_start.timestamp(), end.timestamp()
    return ctg_read(
        fhr=per_second(series[Metric.FETAL_HEART_RATE], start=first, end=last),
        ua=per_second(series[Metric.UTERINE_ACTIVITY], start=first, end=last),
        mhr=maternal_channel(
            per_second(series[Metric.HEART_RATE], start=first, end=last),
            per_second(series[Metric.PULSE_RATE], start=first, end=last),
        ),
        start=first,
        end=last,
        window=window,
        params=params,
    )


def reading_latest(*, patient_id: int, metric: str, at: datetime) -> Reading | None:
    """The patient's last reading of ``metric`` recorded at or before ``at`` (within the
    hour before it), e.g. the value an alarm was raised on."""
    return (
        Reading.objects.filter(
            patient_id=patient_id,
            metric=metric,
            recorded_at__lte=at,
            recorded_at__gte=at - timedelta(hours=1),
        )
        .order_by("-recorded_at", "-id")
        .first()
    )


def readings_received_since(
    *,
    since: datetime,
    partition: int,
    after: tuple[datetime, int] | None = None,
    until: datetime | None = None,
    limit: int,
) -> list[StoredReading]:
    """Stored readings of one readings-stream partition (``patient % N``) received at or after
    ``since`` (and at or before ``until``), oldest first (received time, then id), at most
    ``limit``, after the ``(received_at, id)`` of ``after`` (the last of the previous page):
    the readings an alarm evaluator catches up on when the stream lost them
    (``alerts.checkpoints``)."""
    rows = Reading.objects.annotate(stream_partition=Mod("patient_id", partitions())).filter(
        stream_partition=partition, received_at__gte=since
    )
    if until is not None:
        rows = rows.filter(received_at__lte=until)
    if after is not None:
        rows = rows.filter(Q(received_at__gt=after[0]) | Q(received_at=after[0], id__gt=after[1]))
    values = rows.order_by("received_at", "id").values_list(
        "id",
        "patient_id",
        "device_id",
        "patient__ward_id",
        "metric",
        "value",
        "recorded_at",
        "received_at",
        "seq",
    )[:limit]
    return [StoredReading(*row) for row in values]


def readings_replayed(
    *, partition: int, appended_since: datetime
) -> list[tuple[datetime, datetime]]:
    """The ranges of received times of the readings of one readings-stream partition that
    reached the stream late, from the backlog, since ``appended_since`` (``StreamReplay``),
    oldest first."""
    return list(
        StreamReplay.objects.filter(partition=partition, appended_at__gte=appended_since)
        .order_by("received_from")
        .values_list("received_from", "received_until")
    )
