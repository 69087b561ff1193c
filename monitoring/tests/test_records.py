from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinical.models import Device
from monitoring import services
from monitoring.models import Reading
from testing.assertions import assert_error
from testing.clients import device_client
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, WardFactory, reading_raw

pytestmark = pytest.mark.django_db

READING_FIELDS = {
    "id",
    "patient",
    "device",
    "metric",
    "value",
    "bpm",
    "recorded_at",
    "received_at",
    "seq",
}


@pytest.fixture
def client(device):
    return device_client(device.token)


# --- From a device ----------------------------------------------------------------------------


def test_device_posts_one_reading(client, device):
    before = timezone.now()
    response = client.post("/api/records/", reading_raw(7, bpm=132))
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"stored", "duplicates", "rejected"}
    assert body["duplicates"] == [] and body["rejected"] == []
    [stored] = body["stored"]
    assert set(stored) == READING_FIELDS
    assert stored["patient"] == device.patient_id
    assert stored["device"] == device.id
    assert (stored["metric"], stored["bpm"], stored["seq"]) == ("heart_rate", 132, 7)
    row = Reading.objects.get()
    assert row.id == stored["id"] and row.entered_by_id is None
    device.refresh_from_db()
    assert device.last_seen_at is not None and device.last_seen_at >= before


def test_device_posts_a_batch(client, device):
    response = client.post("/api/records/", [reading_raw(s) for s in range(1, 11)])
    assert response.status_code == 201, response.content
    assert sorted(r["seq"] for r in response.json()["stored"]) == list(range(1, 11))
    assert Reading.objects.filter(device=device).count() == 10


def test_patient_in_a_device_reading_is_ignored(client, device):
    other = PatientFactory(ward=device.patient.ward)
    response = client.post("/api/records/", reading_raw(1, patient=other.id))
    assert response.status_code == 201
    assert Reading.objects.get().patient_id == device.patient_id


def test_duplicates_are_acked_and_stored_once(client, device):
    first = client.post("/api/records/", [reading_raw(1), reading_raw(2)])
    assert first.status_code == 201
    again = client.post("/api/records/", [reading_raw(2), reading_raw(3), reading_raw(3)])
    assert again.status_code == 201, again.content
    body = again.json()
    assert [r["seq"] for r in body["stored"]] == [3]
    assert sorted(body["duplicates"]) == [2, 3]
    replay = client.post("/api/records/", reading_raw(1))
    assert replay.status_code == 201
    assert replay.json() == {"stored": [], "duplicates": [1], "rejected": []}
    assert sorted(seq or 0 for seq in Reading.objects.values_list("seq", flat=True)) == [1, 2, 3]


def test_a_batch_is_accepted_partially_with_per_item_errors(client, device):
    batch = [reading_raw(1), reading_raw(2, bpm=400), reading_raw(3), "nonsense", reading_raw(None)]
    response = client.post("/api/records/", batch)
    assert response.status_code == 201, response.content
    body = response.json()
    assert sorted(r["seq"] for r in body["stored"]) == [1, 3]
    rejected = {item["index"]: item for item in body["rejected"]}
    assert set(rejected) == {1, 3, 4}
    assert rejected[1]["seq"] == 2
    assert rejected[1]["error"]["code"] == "validation_error"
    assert "bpm" in rejected[1]["error"]["details"]
    assert rejected[3]["seq"] is None and rejected[3]["error"]["message"]
    assert "seq" in rejected[4]["error"]["details"]
    assert Reading.objects.count() == 2


def test_a_batch_with_no_valid_item_is_400_keyed_by_index(client):
    response = client.post("/api/records/", [reading_raw(1, bpm=10), reading_raw(2, metric="spo2")])
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"0", "1"}
    assert "bpm" in error["details"]["0"] and "metric" in error["details"]["1"]
    assert Reading.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"bpm": 19}, "bpm"),
        ({"bpm": 301}, "bpm"),
        ({"bpm": "80"}, "bpm"),
        ({"bpm": 80.5}, "bpm"),
        ({"bpm": None}, "bpm"),
        ({"metric": "spo2"}, "metric"),
        ({"metric": "fetal_heart_rate", "bpm": 140}, "metric"),  # adult patient
        ({"recorded_at": "2026-01-01T10:00:00"}, "recorded_at"),  # naive
        ({"recorded_at": "yesterday"}, "recorded_at"),
        ({"recorded_at": 1700000000}, "recorded_at"),
        ({"seq": 0}, "seq"),
        ({"seq": -3}, "seq"),
        ({"seq": "5"}, "seq"),
        ({"seq": 2**63}, "seq"),
    ],
)
def test_invalid_reading_is_400_with_field_details(client, overrides, field):
    response = client.post("/api/records/", {**reading_raw(1), **overrides})
    error = assert_error(response, 400, "validation_error")
    assert field in error["details"], error
    assert Reading.objects.count() == 0


def test_future_readings_beyond_five_minutes_are_refused(client):
    late = (timezone.now() + timedelta(minutes=6)).isoformat()
    error = assert_error(client.post("/api/records/", reading_raw(1, recorded_at=late)), 400)
    assert "recorded_at" in error["details"]
    soon = (timezone.now() + timedelta(minutes=4)).isoformat()
    assert client.post("/api/records/", reading_raw(2, recorded_at=soon)).status_code == 201


def test_seq_is_required_from_a_device(client):
    error = assert_error(client.post("/api/records/", reading_raw(None)), 400, "validation_error")
    assert "seq" in error["details"]


@pytest.mark.parametrize(
    ("metric", "low", "high"), [("heart_rate", 20, 300), ("fetal_heart_rate", 50, 240)]
)
def test_bpm_bounds_per_metric(obstetric_patient, metric, low, high):
    device = DeviceFactory(patient=obstetric_patient)
    client = device_client(device.token)
    for seq, bpm in enumerate((low, high), start=1):
        response = client.post("/api/records/", reading_raw(seq, metric=metric, bpm=bpm))
        assert response.status_code == 201, (bpm, response.content)
    for seq, bpm in enumerate((low - 1, high + 1), start=10):
        error = assert_error(
            client.post("/api/records/", reading_raw(seq, metric=metric, bpm=bpm)), 400
        )
        assert "bpm" in error["details"]
    assert Reading.objects.filter(metric=metric).count() == 2


def test_inactive_device_is_refused(client, device):
    Device.objects.filter(pk=device.pk).update(is_active=False)
    assert_error(client.post("/api/records/", reading_raw(1)), 403, "device_inactive")
    assert Reading.objects.count() == 0
    device.refresh_from_db()
    assert device.last_seen_at is None


def test_unassigned_device_is_409(place):
    device = DeviceFactory(patient=None, place=place)
    response = device_client(device.token).post("/api/records/", reading_raw(1))
    assert_error(response, 409, "device_unassigned")
    assert Reading.objects.count() == 0


def test_device_moved_to_another_patient_posts_for_the_new_one(admin_api, device, ward):
    newcomer = PatientFactory(ward=ward)
    assert (
        admin_api.patch(f"/api/devices/{device.id}/", {"patient": newcomer.id}).status_code == 200
    )
    response = device_client(device.token).post("/api/records/", reading_raw(1))
    assert response.json()["stored"][0]["patient"] == newcomer.id


@pytest.mark.parametrize(
    "header",
    ["Device", "Device not-a-token", "Device a b", "Device \u00e9t\u00e9"],
)
def test_bad_device_credentials_are_401(api, device, header):
    api.credentials(HTTP_AUTHORIZATION=header.encode().decode("latin-1"))
    response = api.post("/api/records/", reading_raw(1))
    assert_error(response, 401)
    assert Reading.objects.count() == 0


def test_anonymous_is_401(api, device):
    assert_error(api.post("/api/records/", reading_raw(1)), 401, "not_authenticated")


@pytest.mark.parametrize("body", [[], 42, "text", None])
def test_body_must_be_an_object_or_a_non_empty_list(client, body):
    assert_error(client.post("/api/records/", body, format="json"), 400)


def test_malformed_json_is_400(client):
    response = client.post("/api/records/", "{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_batch_limit(client, settings):
    settings.RECORDS_MAX_BATCH = 5
    response = client.post("/api/records/", [reading_raw(s) for s in range(1, 7)])
    error = assert_error(response, 400, "batch_too_large")
    assert "5" in error["message"]
    assert client.post("/api/records/", [reading_raw(s) for s in range(1, 6)]).status_code == 201


def test_default_batch_limit_is_5000(client):
    assert django_settings.RECORDS_MAX_BATCH == 5000
    response = client.post("/api/records/", [reading_raw(1)] * 5001)
    assert_error(response, 400, "batch_too_large")


def test_storage_goes_through_the_shared_ingest_entry(client, monkeypatch, device):
    calls = []
    real = services.readings_ingest

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(services, "readings_ingest", spy)
    assert client.post("/api/records/", [reading_raw(1), reading_raw(2)]).status_code == 201
    assert len(calls) == 1
    assert [r.seq for r in calls[0]["readings"]] == [1, 2]
    assert calls[0]["wards"] == {device.patient_id: device.patient.ward_id}


def test_query_count_does_not_grow_with_the_batch(client):
    def count(first_seq: int, size: int) -> int:
        batch = [reading_raw(s) for s in range(first_seq, first_seq + size)]
        with CaptureQueriesContext(connection) as ctx:
            response = client.post("/api/records/", batch)
        assert response.status_code == 201
        assert len(response.json()["stored"]) == size
        return len(ctx.captured_queries)

    small = count(1, 5)
    large = count(1000, 500)
    assert small == large, (small, large)
    # Device lookup, last_seen_at, and one INSERT (inside its savepoint) at the time of
    # writing; the live pipeline may add a constant few.
    assert large <= 12
    assert Reading.objects.count() == 505


# --- Manual entry by clinicians ---------------------------------------------------------------


def test_nurse_enters_a_manual_reading(nurse_api, nurse, patient):
    response = nurse_api.post("/api/records/", reading_raw(None, patient=patient.id, bpm=90))
    assert response.status_code == 201, response.content
    [stored] = response.json()["stored"]
    assert stored["patient"] == patient.id
    assert stored["device"] is None and stored["seq"] is None
    row = Reading.objects.get()
    assert row.entered_by_id == nurse.id and row.device_id is None


def test_manual_readings_are_validated_like_device_readings(doctor_api, patient):
    error = assert_error(
        doctor_api.post("/api/records/", reading_raw(None, patient=patient.id, bpm=10)), 400
    )
    assert "bpm" in error["details"]
    fetal = reading_raw(None, patient=patient.id, metric="fetal_heart_rate", bpm=140)
    assert "metric" in assert_error(doctor_api.post("/api/records/", fetal), 400)["details"]


def test_manual_fetal_reading_for_an_obstetric_patient(doctor_api, obstetric_patient):
    fetal = reading_raw(3, patient=obstetric_patient.id, metric="fetal_heart_rate", bpm=140)
    response = doctor_api.post("/api/records/", fetal)
    assert response.status_code == 201
    assert response.json()["stored"][0]["seq"] == 3


def test_manual_reading_needs_a_visible_patient(doctor_api, patient):
    stranger = PatientFactory(ward=WardFactory(place=PlaceFactory()))
    assert_error(
        doctor_api.post("/api/records/", reading_raw(None, patient=stranger.id)), 404, "not_found"
    )
    assert_error(
        doctor_api.post("/api/records/", reading_raw(None, patient=999999)), 404, "not_found"
    )
    for missing in (
        reading_raw(None),
        reading_raw(None, patient="1"),
        reading_raw(None, patient=True),
    ):
        error = assert_error(doctor_api.post("/api/records/", missing), 400, "validation_error")
        assert "patient" in error["details"]
    # In a list, the invisible patient's item is rejected and the rest stored.
    response = doctor_api.post(
        "/api/records/",
        [reading_raw(None, patient=patient.id), reading_raw(None, patient=stranger.id)],
    )
    assert response.status_code == 201
    [rejected] = response.json()["rejected"]
    assert rejected["index"] == 1 and rejected["error"]["code"] == "not_found"
    assert Reading.objects.filter(patient=stranger).count() == 0
    assert Reading.objects.filter(patient=patient).count() == 1


def test_admin_enters_readings_for_patients_of_any_place(admin_api):
    stranger = PatientFactory(ward=WardFactory(place=PlaceFactory()))
    response = admin_api.post("/api/records/", [reading_raw(None, patient=stranger.id)])
    assert response.status_code == 201


def test_records_endpoint_only_accepts_post(client, doctor_api):
    assert_error(client.get("/api/records/"), 405, "method_not_allowed")
    assert_error(doctor_api.get("/api/records/"), 405, "method_not_allowed")
