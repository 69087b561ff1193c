from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from monitoring.models import Reading
from monitoring.tests.test_records import READING_FIELDS
from testing.assertions import assert_error
from testing.clients import device_client
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, WardFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


def _add(patient, *items, device=None):
    """items: (seconds after T0, value[, metric]) -> stored readings."""
    rows = [
        Reading(
            patient=patient,
            device=device,
            metric=item[2] if len(item) > 2 else "heart_rate",
            value=item[1],
            recorded_at=T0 + timedelta(seconds=item[0]),
            seq=index + 1 if device else None,
        )
        for index, item in enumerate(items)
    ]
    return Reading.objects.bulk_create(rows)


def _q(value: datetime) -> str:
    return quote(value.isoformat())


# --- Raw history ------------------------------------------------------------------------------


def test_history_is_newest_first_with_reading_fields(nurse_api, device):
    _add(device.patient, (0, 80), (10, 90), (5, 85), device=device)
    response = nurse_api.get(f"/api/records/{device.patient_id}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"next", "previous", "results"}  # no count on a time series
    assert [r["bpm"] for r in body["results"]] == [90, 85, 80]
    first = body["results"][0]
    assert set(first) == READING_FIELDS
    assert first["device"] == device.id and first["patient"] == device.patient_id
    assert datetime.fromisoformat(first["recorded_at"]) == T0 + timedelta(seconds=10)


def test_cursor_pagination_walks_every_reading_once(doctor_api, patient):
    # Two readings share a timestamp: the cursor must still neither skip nor repeat.
    _add(patient, *[(s, 60 + s) for s in range(7)], (3, 150))
    url = f"/api/records/{patient.id}/?page_size=3"
    seen: list[int] = []
    pages = 0
    while url:
        body = doctor_api.get(url).json()
        assert len(body["results"]) <= 3
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(Reading.objects.values_list("id", flat=True))
    assert len(seen) == len(set(seen)) == 8

    # previous leads back.
    first = doctor_api.get(f"/api/records/{patient.id}/?page_size=3").json()
    second = doctor_api.get(first["next"]).json()
    assert second["previous"]
    assert doctor_api.get(second["previous"]).json()["results"] == first["results"]


def test_filters_from_to_and_metric(doctor_api, obstetric_patient):
    p = obstetric_patient
    _add(p, (0, 80), (60, 81), (120, 82), (60, 140, "fetal_heart_rate"))

    def bpms(query: str) -> list[int]:
        response = doctor_api.get(f"/api/records/{p.id}/?{query}")
        assert response.status_code == 200, response.content
        return [r["bpm"] for r in response.json()["results"]]

    assert bpms(f"from={_q(T0 + timedelta(seconds=60))}") == [82, 140, 81]
    assert bpms(f"to={_q(T0 + timedelta(seconds=60))}") == [80]  # `to` is exclusive
    assert bpms("metric=fetal_heart_rate") == [140]
    start, end = _q(T0 + timedelta(seconds=30)), _q(T0 + timedelta(seconds=90))
    assert bpms(f"from={start}&to={end}&metric=heart_rate") == [81]
    # Another offset names the same instant; Z works; an unencoded "+" (a space) is accepted.
    assert bpms("from=2026-11-25T15:32:00%2B05:30") == [82]
    assert bpms("from=2026-11-25T10:02:00Z") == [82]
    assert bpms("from=2026-11-25T15:32:00+05:30") == [82]
    assert bpms("ordering=recorded_at&metric=heart_rate") == [80, 81, 82]


def test_a_pulse_rate_is_its_own_metric_in_the_history(doctor_api, patient):
    _add(patient, (0, 72), (0, 75, "pulse_rate"))
    response = doctor_api.get(f"/api/records/{patient.id}/?metric=pulse_rate")
    assert response.status_code == 200, response.content
    assert [(r["metric"], r["bpm"], r["value"]) for r in response.json()["results"]] == [
        ("pulse_rate", 75, 75)
    ]
    client = device_client(DeviceFactory(patient=patient).token)
    posted = client.post(
        "/api/records/",
        {"metric": "pulse_rate", "bpm": 76, "recorded_at": timezone.now().isoformat(), "seq": 9},
        format="json",
    )
    assert posted.status_code == 201, posted.content


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-11-25T10:00:00", "from"),  # naive
        ("to=yesterday", "to"),
        ("metric=spo2", "metric"),
    ],
)
def test_bad_filters_are_400(doctor_api, patient, query, field):
    error = assert_error(doctor_api.get(f"/api/records/{patient.id}/?{query}"), 400)
    assert field in error["details"]


def test_bad_cursor_is_404(doctor_api, patient):
    assert_error(doctor_api.get(f"/api/records/{patient.id}/?cursor=garbage"), 404)


def test_history_of_invisible_patients_is_404(doctor_api, patient):
    stranger = PatientFactory(ward=WardFactory(place=PlaceFactory()))
    _add(stranger, (0, 80))
    assert_error(doctor_api.get(f"/api/records/{stranger.id}/"), 404, "not_found")
    assert_error(doctor_api.get(f"/api/records/{stranger.id}/?bucket=60"), 404, "not_found")
    assert_error(doctor_api.get("/api/records/999999/"), 404, "not_found")


def test_admin_reads_any_patient(admin_api):
    stranger = PatientFactory(ward=WardFactory(place=PlaceFactory()))
    _add(stranger, (0, 80))
    assert len(admin_api.get(f"/api/records/{stranger.id}/").json()["results"]) == 1


def test_history_refuses_anonymous_and_device_tokens(api, device):
    assert_error(api.get(f"/api/records/{device.patient_id}/"), 401, "not_authenticated")
    client = device_client(device.token)
    assert_error(client.get(f"/api/records/{device.patient_id}/"), 401)
    assert_error(client.get(f"/api/records/{device.patient_id}/?bucket=60"), 401)


def test_posted_readings_show_in_history(doctor_api, device):
    client = device_client(device.token)
    now = timezone.now()
    batch = [
        {
            "seq": s,
            "metric": "heart_rate",
            "bpm": 100 + s,
            "recorded_at": (now - timedelta(seconds=10 - s)).isoformat(),
        }
        for s in range(1, 4)
    ]
    assert client.post("/api/records/", batch).status_code == 201
    body = doctor_api.get(f"/api/records/{device.patient_id}/").json()
    assert [r["seq"] for r in body["results"]] == [3, 2, 1]


# --- Aggregated history -----------------------------------------------------------------------


def test_aggregation_per_bucket_and_metric(doctor_api, obstetric_patient):
    p = obstetric_patient
    _add(
        p,
        # bucket 10:00 (60 s)
        (0, 80),
        (20.5, 90),
        (59.999, 100),
        (30, 140, "fetal_heart_rate"),
        (31, 150, "fetal_heart_rate"),
        # bucket 10:01
        (60, 70),
        # bucket 10:03 (10:02 is empty and absent)
        (185, 121),
        (190, 122),
        # outside the range
        (-1, 255),
        (240, 255),
    )
    start, end = _q(T0), _q(T0 + timedelta(minutes=4))
    response = doctor_api.get(f"/api/records/{p.id}/?bucket=60&from={start}&to={end}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["bucket"] == 60
    assert datetime.fromisoformat(body["from"]) == T0
    assert datetime.fromisoformat(body["to"]) == T0 + timedelta(minutes=4)
    rows = [
        (
            datetime.fromisoformat(r["bucket_start"]),
            r["metric"],
            r["min"],
            r["max"],
            r["mean"],
            r["count"],
        )
        for r in body["results"]
    ]
    minute = timedelta(minutes=1)
    assert rows == [
        (T0, "fetal_heart_rate", 140, 150, 145.0, 2),
        (T0, "heart_rate", 80, 100, 90.0, 3),
        (T0 + minute, "heart_rate", 70, 70, 70.0, 1),
        (T0 + 3 * minute, "heart_rate", 121, 122, 121.5, 2),
    ]

    response = doctor_api.get(
        f"/api/records/{p.id}/?bucket=300&from={start}&to={end}&metric=heart_rate"
    )
    [row] = response.json()["results"]
    assert (row["min"], row["max"], row["count"]) == (70, 122, 6)
    assert row["mean"] == round((80 + 90 + 100 + 70 + 121 + 122) / 6, 2)


def test_buckets_are_aligned_to_the_epoch(doctor_api, patient):
    _add(patient, (3600 + 17, 88))  # 11:00:17
    start = _q(T0 + timedelta(minutes=59, seconds=30))
    end = _q(T0 + timedelta(hours=2))
    body = doctor_api.get(f"/api/records/{patient.id}/?bucket=3600&from={start}&to={end}").json()
    [row] = body["results"]
    assert datetime.fromisoformat(row["bucket_start"]) == T0 + timedelta(hours=1)


def test_aggregation_defaults_to_the_last_hour(doctor_api, patient):
    now = timezone.now()
    Reading.objects.bulk_create(
        [
            Reading(
                patient=patient,
                metric="heart_rate",
                value=70,
                recorded_at=now - timedelta(minutes=5),
            ),
            Reading(
                patient=patient, metric="heart_rate", value=99, recorded_at=now - timedelta(hours=2)
            ),
        ]
    )
    body = doctor_api.get(f"/api/records/{patient.id}/?bucket=3600").json()
    assert sum(r["count"] for r in body["results"]) == 1
    assert {r["min"] for r in body["results"]} == {70}
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert span == timedelta(hours=1)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("bucket=0", "bucket"),
        ("bucket=abc", "bucket"),
        ("bucket=86401", "bucket"),
        ("bucket=1&from=2026-11-25T00:00:00Z&to=2026-11-25T02:00:00Z", "bucket"),  # 7200 buckets
        ("bucket=60&from=2026-11-25T10:00:00Z&to=2026-11-25T09:00:00Z", "from"),
        ("bucket=60&from=2026-11-25T10:00:00", "from"),
        ("bucket=60&metric=spo2", "metric"),
    ],
)
def test_bad_aggregation_queries_are_400(doctor_api, patient, query, field):
    error = assert_error(doctor_api.get(f"/api/records/{patient.id}/?{query}"), 400)
    assert field in error["details"], error


def test_five_thousand_buckets_are_allowed(doctor_api, patient):
    query = "bucket=1&from=2026-11-25T10:00:00Z&to=2026-11-25T11:23:20Z"  # exactly 5000
    assert doctor_api.get(f"/api/records/{patient.id}/?{query}").status_code == 200
