from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from common.errors import ValidationFailed
from monitoring.models import Reading
from monitoring.readings import ReadingIn, reading_parse, readings_store, readings_store_isolating
from testing.factories import ingest_target

pytestmark = pytest.mark.django_db


def _raw(seq: int, bpm: int = 120, metric: str = "heart_rate") -> dict:
    return {"seq": seq, "metric": metric, "bpm": bpm, "recorded_at": timezone.now().isoformat()}


def test_duplicates_in_and_across_batches_are_stored_once(device):
    target = ingest_target(device)
    first = [reading_parse(_raw(s), target=target, require_seq=True) for s in (1, 2, 2, 3)]
    stored = readings_store(readings=first, wards={device.patient_id: device.patient.ward_id})
    assert sorted(r.seq or 0 for r in stored) == [1, 2, 3]
    assert all(r.ward_id == device.patient.ward_id for r in stored)

    again = [reading_parse(_raw(s), target=target, require_seq=True) for s in (3, 4)]
    stored = readings_store(readings=again)
    assert [r.seq for r in stored] == [4]
    assert Reading.objects.filter(device=device).count() == 4


def test_store_is_one_insert_per_chunk(device, django_assert_max_num_queries):
    target = ingest_target(device)
    readings = [reading_parse(_raw(s), target=target, require_seq=True) for s in range(1, 601)]
    # Two INSERTs for 600 rows (chunks of 500), plus the savepoint and its release.
    with django_assert_max_num_queries(4) as captured:
        readings_store(readings=readings)
    # On PostgreSQL the INSERT is one statement that begins with its idempotency-key CTE.
    inserts = [
        q for q in captured.captured_queries if q["sql"].lstrip().startswith(("INSERT", "WITH"))
    ]
    assert len(inserts) == 2
    assert Reading.objects.count() == 600


def test_every_column_is_stored_as_given(device, admin_user):
    """What the store writes is what it was given: times with their instant to the microsecond
    whatever their UTC offset, readings without a device or seq (entered by hand), numbers at
    the bounds."""
    ist = datetime.fromisoformat("2026-12-07T20:15:30.123456+05:30")
    given = [
        ReadingIn(device.patient_id, device.id, "heart_rate", 20, ist, 7),
        ReadingIn(device.patient_id, device.id, "heart_rate", 300, ist + timedelta(seconds=1), 8),
        ReadingIn(device.patient_id, None, "heart_rate", 61, ist, None, admin_user.id),
    ]
    stored = readings_store(readings=given)
    assert len(stored) == 3
    rows = Reading.objects.filter(patient_id=device.patient_id).order_by("id")
    got = [(r.device_id, r.metric, r.value, r.recorded_at, r.seq, r.entered_by_id) for r in rows]
    assert got == [
        (r.device_id, r.metric, r.value, r.recorded_at, r.seq, r.entered_by_id) for r in given
    ]
    assert rows[0].recorded_at.isoformat() == "2026-12-07T14:45:30.123456+00:00"


def test_a_reading_of_no_known_metric_is_refused_alone(device):
    """A metric no path accepts (only a caller's bug could make one) is refused without taking
    the readings beside it down."""
    target = ingest_target(device)
    good = [reading_parse(_raw(s), target=target, require_seq=True) for s in (1, 2)]
    bad = replace(good[0], metric="heart_rate,1", seq=3)
    stored, refused = readings_store_isolating(readings=[good[0], bad, good[1]])
    assert sorted(r.seq or 0 for r in stored) == [1, 2]
    assert refused == [bad]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"metric": "heart_rate", "bpm": 19, "seq": 1}, "bpm"),
        ({"metric": "heart_rate", "bpm": 301, "seq": 1}, "bpm"),
        ({"metric": "heart_rate", "bpm": "80", "seq": 1}, "bpm"),
        ({"metric": "heart_rate", "bpm": True, "seq": 1}, "bpm"),
        ({"metric": "spo2", "bpm": 80, "seq": 1}, "metric"),
        ({"metric": "heart_rate", "bpm": 80, "seq": 0}, "seq"),
        ({"metric": "heart_rate", "bpm": 80}, "seq"),
        ({"metric": "fetal_heart_rate", "bpm": 140, "seq": 1}, "metric"),
    ],
)
def test_invalid_readings_are_refused_with_field_details(device, raw, field):
    raw = {"recorded_at": timezone.now().isoformat(), **raw}
    with pytest.raises(ValidationFailed) as info:
        reading_parse(raw, target=ingest_target(device), require_seq=True)
    assert field in (info.value.details or {})


def test_recorded_at_must_carry_offset_and_not_be_far_in_future(device):
    target = ingest_target(device)
    naive = {"seq": 1, "metric": "heart_rate", "bpm": 80, "recorded_at": "2026-01-01T10:00:00"}
    with pytest.raises(ValidationFailed):
        reading_parse(naive, target=target, require_seq=True)
    future = (timezone.now() + timedelta(minutes=6)).isoformat()
    with pytest.raises(ValidationFailed):
        reading_parse({**naive, "recorded_at": future}, target=target, require_seq=True)
    soon = (timezone.now() + timedelta(minutes=4)).isoformat()
    assert reading_parse({**naive, "recorded_at": soon}, target=target, require_seq=True).seq == 1
