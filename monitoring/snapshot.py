"""The dashboard's snapshot: what a dashboard is sent on every subscribe, read from the
database in a fixed number of queries."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from clinical.models import Device, Patient
from clinical.selectors import patient_device, patient_with_device, ward_patients_admitted
from common.datetimes import iso
from monitoring.ingest.presence import devices_online
from monitoring.live.registry import snapshot_extras
from monitoring.models import Metric, Reading
from monitoring.readings import value_fields


def dashboard_snapshot(*, ward_id: int | None = None, patient_id: int | None = None) -> list[dict]:
    """Every patient in scope with bed, profile, device status, latest reading per metric, and
    what higher apps add (open alerts, the latest CTG classification). Two queries, one Redis
    call and one query per extra, whatever the number of patients.

    A ward's snapshot lists its admitted (not discharged) patients.
    """
    if ward_id is not None:
        patients_qs = ward_patients_admitted(ward_id=ward_id)
    else:
        assert patient_id is not None
        patients_qs = patient_with_device(patient_id=patient_id)
    metrics = [m.value for m in Metric]
    latest = {
        f"latest_{m}": Subquery(
            Reading.objects.filter(patient=OuterRef("pk"), metric=m)
            .order_by("-recorded_at", "-id")
            .values("id")[:1]
        )
        for m in metrics
    }
    patients: list[Patient] = list(patients_qs.annotate(**latest))
    reading_ids = [
        getattr(p, f"latest_{m}") for p in patients for m in metrics if getattr(p, f"latest_{m}")
    ]
    readings = {
        r.id: r
        for r in Reading.objects.filter(id__in=reading_ids).only(
            "id", "metric", "value", "recorded_at", "seq"
        )
    }
    patient_ids = [p.id for p in patients]
    extras = {
        name: (extra(patient_ids=patient_ids), empty)
        for name, (extra, empty) in snapshot_extras.items()
    }
    devices: dict[int, Device | None] = {p.id: patient_device(p) for p in patients}
    known = [d for d in devices.values() if d is not None]
    online = devices_online((d.id for d in known), last_seen={d.id: d.last_seen_at for d in known})
    result = []
    for p in patients:
        device = devices[p.id]
        latest_by_metric = {}
        for m in metrics:
            reading = readings.get(getattr(p, f"latest_{m}"))
            if reading is not None:
                latest_by_metric[m] = {
                    **value_fields(m, reading.value),
                    "recorded_at": reading.recorded_at.isoformat(),
                    "seq": reading.seq,
                }
        result.append(
            {
                "id": p.id,
                "name": p.name,
                "mrn": p.mrn,
                "date_of_birth": iso(p.date_of_birth),
                "sex": p.sex,
                "monitoring_profile": p.monitoring_profile,
                "place": p.place_id,
                "ward": p.ward_id,
                "bed": p.bed,
                "device": None
                if device is None
                else {
                    "id": device.id,
                    "serial": device.serial,
                    "is_active": device.is_active,
                    "online": device.id in online,
                    "last_seen_at": iso(device.last_seen_at),
                },
                "latest": latest_by_metric,
                **{
                    name: values[p.id] if p.id in values else empty()
                    for name, (values, empty) in extras.items()
                },
            }
        )
    return result
