"""The bench fixture, made and removed through the ORM: a place with wards (and an idle
ward), one patient and device (with its token) per simulated device, a nurse and her JWT."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devtools.bench.alarm_latency import normal_bpm


@dataclass
class BenchDevice:
    index: int
    id: int
    token: str
    patient_id: int
    ward_id: int
    metric: str


@dataclass
class Fixture:
    label: str
    place_id: int
    ward_ids: list[int]
    idle_ward_id: int
    user_id: int
    jwt: str
    devices: list[BenchDevice]

    @property
    def device_ids(self) -> list[int]:
        return [d.id for d in self.devices]


def fixture_create(*, devices: int, wards: int, label: str | None = None) -> Fixture:
    """A bench place with ``wards`` wards (+1 idle ward), one patient and device per device."""
    from django.db import transaction
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import Role, User
    from clinical.models import Device, Patient, Place, Ward
    from clinical.tokens import token_generate, token_hash

    label = label or f"bench-{uuid.uuid4().hex[:8]}"
    with transaction.atomic():
        place = Place.objects.create(name=f"Bench {label}", kind=Place.Kind.HOSPITAL)
        ward_objs = Ward.objects.bulk_create(
            [Ward(place=place, name=f"Bench ward {i + 1}") for i in range(max(1, wards))]
        )
        idle_ward = Ward.objects.create(place=place, name="Bench idle ward")
        patients = Patient.objects.bulk_create(
            [
                Patient(
                    name=f"Bench patient {i + 1}",
                    mrn=f"{label}-{i + 1:06d}",
                    sex=Patient.Sex.FEMALE,
                    # Every other patient is obstetric and streams fetal heart rate.
                    monitoring_profile=(
                        Patient.Profile.OBSTETRIC if i % 2 else Patient.Profile.ADULT
                    ),
                    place=place,
                    ward=ward_objs[i % len(ward_objs)],
                    bed=f"B{i + 1}",
                )
                for i in range(devices)
            ]
        )
        tokens = [token_generate() for _ in range(devices)]
        device_objs = Device.objects.bulk_create(
            [
                Device(
                    serial=f"{label}-{i + 1:06d}",
                    model="Bench",
                    place=place,
                    patient=patients[i],
                    token_hash=token_hash(tokens[i]),
                )
                for i in range(devices)
            ]
        )
        user = User.objects.create_user(
            email=f"{label}@bench.invalid",
            password=None,
            role=Role.NURSE,
            first_name="Bench",
            last_name="Nurse",
        )
        user.places.set([place])
    # A long-lived access token so long runs keep a valid one.
    access = AccessToken.for_user(user)
    access.set_exp(lifetime=timedelta(hours=6))
    return Fixture(
        label=label,
        place_id=place.id,
        ward_ids=[w.id for w in ward_objs],
        idle_ward_id=idle_ward.id,
        user_id=user.id,
        jwt=str(access),
        devices=[
            BenchDevice(
                index=i,
                id=device_objs[i].id,
                token=tokens[i],
                patient_id=patients[i].id,
                ward_id=ward_objs[i % len(ward_objs)].id,  # the patient's ward, as created
                metric=(
                    "fetal_heart_rate"
                    if patients[i].monitoring_profile == Patient.Profile.OBSTETRIC
                    else "heart_rate"
                ),
            )
            for i in range(devices)
        ],
    )


def fixture_counts(fixture: Fixture) -> dict[str, Any]:
    """Readings stored for the fixture's devices, per ward, and duplicate (device, seq) rows."""
    from django.db.models import Count

    from monitoring.models import Reading

    # The streamed readings: a CTG episode's stored history has no device (fixture_ctg_history).
    rows = Reading.objects.filter(device_id__in=fixture.device_ids)
    per_ward: dict[int, int] = {w: 0 for w in fixture.ward_ids}
    by_patient_ward = {d.patient_id: d.ward_id for d in fixture.devices}
    stored = 0
    for item in rows.values("patient_id").annotate(n=Count("id")):
        stored += item["n"]
        ward_id = by_patient_ward.get(item["patient_id"])
        if ward_id is not None:
            per_ward[ward_id] = per_ward.get(ward_id, 0) + item["n"]
    duplicates = sum(
        item["n"] - 1
        for item in rows.values("device_id", "seq").annotate(n=Count("id")).filter(n__gt=1)
    )
    return {"stored": stored, "duplicates_stored": duplicates, "per_ward": per_ward}


def fixture_alerts(fixture: Fixture) -> int:
    from alerts.models import Alert

    return Alert.objects.filter(patient__place_id=fixture.place_id).count()


def fixture_delete(fixture: Fixture) -> None:
    from django.db import transaction

    from accounts.models import User
    from clinical.models import Device, Patient, Place, Ward
    from monitoring.models import Reading

    with transaction.atomic():
        patient_ids = [d.patient_id for d in fixture.devices]
        Reading.objects.filter(patient_id__in=patient_ids).delete()
        Device.objects.filter(place_id=fixture.place_id).delete()
        Patient.objects.filter(place_id=fixture.place_id).delete()
        Ward.objects.filter(place_id=fixture.place_id).delete()
        User.objects.filter(id=fixture.user_id).delete()
        Place.objects.filter(id=fixture.place_id).delete()


def fixture_alarm_holds(fixture: Fixture, *, patient_ids: set[int], hold_seconds: int) -> None:
    """Give these patients their own alarm limits: the defaults of their profile and metric
    with the high-priority bands' hold time set to ``hold_seconds``, through the per-patient
    limits service (what ``PUT /api/patients/<id>/alarm-limits/`` calls)."""
    from dataclasses import replace

    from alerts.rules import HOLD_FIELDS, THRESHOLD_FIELDS, default_limits
    from alerts.services import alarm_limits_set
    from clinical.models import Patient

    metric_of = {d.patient_id: d.metric for d in fixture.devices}
    for patient in Patient.objects.filter(id__in=patient_ids):
        metric = metric_of[patient.id]
        limits = default_limits(profile=patient.monitoring_profile, metric=metric)
        assert limits is not None, (patient.monitoring_profile, metric)
        limits = replace(limits, hold_high_seconds=hold_seconds)
        values = {name: getattr(limits, name) for name in (*THRESHOLD_FIELDS, *HOLD_FIELDS)}
        alarm_limits_set(patient=patient, limits=[{"metric": metric, **values}])


def fixture_ctg_history(
    devices: list[BenchDevice],
    *,
    end: datetime,
    deceleration_from: datetime,
    deceleration_bpm: int,
    seconds: float,
    rate: float = 4.0,
) -> None:
    """Store ``seconds`` of fetal heart rate before ``end`` for these patients, at ``rate`` Hz:
    the bench's normal trace, then ``deceleration_bpm`` from ``deceleration_from``. Stored as
    history, without a device or seq (so not counted as streamed readings) and not queued
    for the evaluator: the CTG analysis reads it from the database."""
    from monitoring.readings import ReadingIn, readings_store

    step = 1.0 / rate
    start = end - timedelta(seconds=seconds)
    count = int(seconds * rate)
    readings = []
    for dev in devices:
        for i in range(count):
            at = start + timedelta(seconds=i * step)
            normal = normal_bpm(dev.metric, i, dev.index)
            bpm = deceleration_bpm if at >= deceleration_from else normal
            readings.append(
                ReadingIn(
                    patient_id=dev.patient_id,
                    device_id=None,
                    metric=dev.metric,
                    value=bpm,
                    recorded_at=at,
                    seq=None,
                )
            )
    readings_store(readings=readings)


def fixture_ctg_deceleration_limit(*, patient_ids: set[int], seconds: int) -> None:
    """Give these patients their own CTG alarm settings: the defaults with
    ``prolonged_deceleration_seconds`` set, through the per-patient settings service (what
    ``PUT /api/patients/<id>/ctg-alarm-limits/`` calls)."""
    from alerts.ctg_rules import ctg_default_limits
    from alerts.services import ctg_alarm_limits_set
    from clinical.models import Patient

    values = {**ctg_default_limits().as_dict(), "prolonged_deceleration_seconds": seconds}
    values.pop("source")
    for patient in Patient.objects.filter(id__in=patient_ids):
        ctg_alarm_limits_set(patient=patient, values=values)
