from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db.models import Avg, BigIntegerField, Count, Func, Max, Min, QuerySet

from accounts.models import User
from accounts.selectors import user_place_ids
from clinical.models import Patient, Place
from config.errors import NotFound
from monitoring.ingest import Target
from monitoring.models import Device, Reading
from monitoring.tokens import token_hash


def device_by_token(token: str) -> Device | None:
    """The device a token belongs to (active or not), with its patient loaded."""
    if not token:
        return None
    return Device.objects.select_related("patient").filter(token_hash=token_hash(token)).first()


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


# --- Reads for the REST API -------------------------------------------------------------------


def devices_visible(user: User) -> QuerySet[Device]:
    """Devices of the places a person may see (all for admins)."""
    qs = Device.objects.select_related("patient")
    place_ids = user_place_ids(user)
    return qs if place_ids is None else qs.filter(place_id__in=place_ids)


def places_visible(user: User) -> QuerySet[Place]:
    place_ids = user_place_ids(user)
    qs = Place.objects.all()
    return qs if place_ids is None else qs.filter(id__in=place_ids)


def patients_visible(user: User) -> QuerySet[Patient]:
    place_ids = user_place_ids(user)
    qs = Patient.objects.all()
    return qs if place_ids is None else qs.filter(place_id__in=place_ids)


def patient_visible_get(*, user: User, patient_id: int) -> Patient:
    """The patient, if the person may see them; otherwise NotFound (no existence leak)."""
    patient = patients_visible(user).filter(id=patient_id).first()
    if patient is None:
        raise NotFound("No such patient.")
    return patient


def patient_targets(*, user: User, patient_ids: Iterable[int]) -> dict[int, Target]:
    """Ingest targets of the patients among ``patient_ids`` that the person may see (one query)."""
    rows = patients_visible(user).filter(id__in=set(patient_ids))
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


class _EpochBucket(Func):
    """Seconds since the epoch of a timestamp, floored to a multiple of ``size`` seconds.

    Grouping on an integer keeps the GROUP BY cheap and is portable: PostgreSQL extracts the
    epoch from ``timestamptz``; SQLite stores UTC text that ``strftime('%s')`` converts.
    """

    output_field = BigIntegerField()

    def __init__(self, expression: Any, size: int) -> None:
        self.size = int(size)
        super().__init__(expression)

    def as_sql(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        raise NotImplementedError(f"Time buckets are not implemented for {connection.vendor}.")

    def as_postgresql(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        sql, params = compiler.compile(self.source_expressions[0])
        size = self.size
        return f"(FLOOR(EXTRACT(EPOCH FROM {sql}) / {size}) * {size})::bigint", params

    def as_sqlite(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        sql, params = compiler.compile(self.source_expressions[0])
        size = self.size
        # Epochs after 1970 are positive, so integer division floors.
        return f"((CAST(strftime('%%s', {sql}) AS INTEGER) / {size}) * {size})", params


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
    rows = (
        readings_history(patient_id=patient_id, start=start, end=end, metric=metric)
        .order_by()
        .annotate(bucket=_EpochBucket("recorded_at", bucket_seconds))
        .values("bucket", "metric")
        .annotate(min=Min("bpm"), max=Max("bpm"), mean=Avg("bpm"), count=Count("id"))
        .order_by("bucket", "metric")
    )
    return [
        {
            "bucket_start": datetime.fromtimestamp(row["bucket"], tz=UTC),
            "metric": row["metric"],
            "min": row["min"],
            "max": row["max"],
            "mean": round(float(row["mean"]), 2),
            "count": row["count"],
        }
        for row in rows
    ]
