"""HAPI-style: each REST and FHIR call gives exactly one audit record with the right patient,
agent, action and outcome; health, metrics and static files give none."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError

from audit.models import AuditRecord
from clinical.models import Patient
from testing.factories import DeviceFactory, PatientFactory, UserFactory, patient_raw

pytestmark = pytest.mark.django_db


def only_record(**expected: Any) -> AuditRecord:
    """The one audit record there is, its fields named in ``expected`` holding those values."""
    records = list(AuditRecord.objects.all())
    assert len(records) == 1, [(r.action, r.resource_type, r.outcome) for r in records]
    record = records[0]
    assert {field: getattr(record, field) for field in expected} == expected
    return record


def test_patient_read_is_one_success_record(nurse_api, nurse, patient):
    response = nurse_api.get(
        f"/api/patients/{patient.id}/", HTTP_USER_AGENT="ward-pc/1", HTTP_X_REQUEST_ID="req-1"
    )
    assert response.status_code == 200
    record = only_record(action="read", resource_type="patient", resource_id=str(patient.id))
    assert record.patient_id == patient.id
    assert record.outcome == "success"
    assert (record.actor_type, record.actor_id, record.actor_role) == ("user", nurse.id, "nurse")
    assert record.channel == "rest"
    assert record.address == "127.0.0.1"
    assert record.user_agent == "ward-pc/1"
    assert record.request_id == "req-1"


def test_outsider_read_is_recorded_not_found(nurse_api, nurse):
    other = PatientFactory()
    assert nurse_api.get(f"/api/patients/{other.id}/").status_code == 404
    record = only_record(action="read", patient_id=other.id, outcome="not_found")
    assert record.actor_id == nurse.id


def test_search_names_its_query(nurse_api, patient):
    query = {"search": "Patient", "active": "true"}
    assert nurse_api.get("/api/patients/", query).status_code == 200
    only_record(action="search", resource_type="patient", query=query, patient_id=None)


def test_create_and_update_are_recorded_with_the_patient(nurse_api, ward, nurse):
    body = patient_raw(ward)
    created = nurse_api.post("/api/patients/", body)
    assert created.status_code == 201
    new_id = created.json()["id"]
    fields = {"fields": sorted(body)}
    record = only_record(action="create", resource_id=str(new_id), patient_id=new_id, detail=fields)
    assert nurse_api.patch(f"/api/patients/{new_id}/", {"bed": "L-08"}).status_code == 200
    update = AuditRecord.objects.exclude(pk=record.pk).get()
    assert (update.action, update.patient_id, update.outcome) == ("update", new_id, "success")
    assert update.detail == {"fields": ["bed"]}


def test_refused_change_is_recorded_and_nothing_else_stored(nurse_api, ward):
    response = nurse_api.post("/api/patients/", {"name": "No MRN", "ward": ward.id})
    assert response.status_code == 400
    only_record(action="create", outcome="refused")


def test_change_and_its_record_commit_together(nurse_api, ward, monkeypatch):
    """A change whose record cannot be written does not happen (500, nothing stored)."""

    def broken(**kwargs):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr("audit.middleware.audit_record", broken)
    nurse_api.raise_request_exception = False
    body = {"name": "X", "mrn": "M-1", "sex": "F", "place": ward.place_id, "ward": ward.id}
    response = nurse_api.post("/api/patients/", body)
    assert response.status_code == 500
    assert not Patient.objects.filter(mrn="M-1").exists()


def test_device_token_rotation_and_discharge_are_named(admin_api, patient):
    device = DeviceFactory(patient=patient)
    assert admin_api.post(f"/api/devices/{device.id}/rotate-token/").status_code == 200
    record = only_record(action="token_rotated", resource_type="device", resource_id=str(device.id))
    assert record.detail == {"operation": "rotate_token"}
    assert admin_api.post(f"/api/patients/{patient.id}/discharge/", {}).status_code == 200
    discharge = AuditRecord.objects.exclude(pk=record.pk).get()
    assert (discharge.action, discharge.patient_id) == ("update", patient.id)
    assert discharge.detail == {"operation": "discharge"}


def test_history_ctg_and_alarm_limits_name_the_patient(nurse_api, patient):
    assert nurse_api.get(f"/api/records/{patient.id}/").status_code == 200
    assert nurse_api.get(f"/api/patients/{patient.id}/ctg/").status_code == 200
    limits = {"limits": [{"metric": "heart_rate", "brady_medium": 55}]}
    assert nurse_api.put(f"/api/patients/{patient.id}/alarm-limits/", limits).status_code == 200
    got = [
        (r.resource_type, r.action, r.patient_id, r.outcome)
        for r in AuditRecord.objects.order_by("id")
    ]
    assert got == [
        ("reading", "search", patient.id, "success"),
        ("ctg", "read", patient.id, "success"),
        ("alarm_limits", "update", patient.id, "success"),
    ]


def test_role_change_records_the_new_role_and_places(admin_api, place):
    user = UserFactory()
    response = admin_api.patch(f"/api/users/{user.id}/", {"role": "doctor", "places": [place.id]})
    assert response.status_code == 200
    record = only_record(resource_type="user", action="update", resource_id=str(user.id))
    assert record.detail == {"fields": ["places", "role"], "places": [place.id], "role": "doctor"}


def test_device_posting_readings_is_the_actor(patient):
    from testing.clients import device_client

    device = DeviceFactory(patient=patient)
    reading = {"metric": "heart_rate", "bpm": 120, "recorded_at": "2026-12-07T10:00:00Z", "seq": 1}
    assert device_client(device.token).post("/api/records/", reading).status_code == 201
    only_record(
        actor_type="device",
        actor_id=device.id,
        actor_label=device.serial,
        action="create",
        resource_type="reading",
        patient_id=patient.id,
    )


def test_fhir_read_and_search_are_one_record_each(nurse_api, patient):
    assert nurse_api.get(f"/fhir/Patient/{patient.id}").status_code == 200
    assert nurse_api.get("/fhir/Observation", {"patient": patient.id}).status_code == 200
    assert nurse_api.get("/fhir/Patient/999999").status_code == 404
    got = [
        (r.channel, r.resource_type, r.action, r.patient_id, r.outcome)
        for r in AuditRecord.objects.order_by("id")
    ]
    assert got == [
        ("fhir", "patient", "read", patient.id, "success"),
        ("fhir", "observation", "search", patient.id, "success"),
        ("fhir", "patient", "read", 999999, "not_found"),
    ]


def test_unauthenticated_health_metrics_and_static_record_nothing(api, client, patient):
    assert api.get(f"/api/patients/{patient.id}/").status_code == 401
    assert client.get("/healthz").status_code == 200
    client.get("/metrics")
    client.get("/static/frontend/js/api.js")
    assert client.get("/fhir/metadata").status_code == 200
    assert not AuditRecord.objects.exists()


def test_places_and_wards_reads_are_not_recorded_but_changes_are(admin_api, place):
    assert admin_api.get("/api/places/").status_code == 200
    assert admin_api.get(f"/api/wards/?place={place.id}").status_code == 200
    assert not AuditRecord.objects.exists()
    assert admin_api.patch(f"/api/places/{place.id}/", {"name": "New name"}).status_code == 200
    assert only_record().resource_type == "place"


def test_strip_notes_are_recorded_with_their_patient(nurse_api, patient):
    created = nurse_api.post(
        f"/api/patients/{patient.id}/notes/", {"at": "2026-12-07T10:00:00Z", "text": "Baseline"}
    )
    assert created.status_code == 201, created.content
    assert nurse_api.get(f"/api/patients/{patient.id}/notes/").status_code == 200
    got = [
        (r.resource_type, r.action, r.resource_id, r.patient_id)
        for r in AuditRecord.objects.order_by("id")
    ]
    assert got == [
        ("note", "create", str(created.json()["id"]), patient.id),
        ("note", "search", str(patient.id), patient.id),
    ]


def test_the_ctg_record_pdf_is_an_export_of_the_patient(nurse_api, patient):
    response = nurse_api.get(f"/api/patients/{patient.id}/ctg.pdf")
    assert response.status_code in (200, 400), response.content[:200]
    only_record(resource_type="ctg_record", action="export", patient_id=patient.id)


def test_alarm_audio_paused_is_recorded_with_its_ward(nurse_api, ward):
    response = nurse_api.post(f"/api/wards/{ward.id}/alarm-audio/pause/", {})
    assert response.status_code == 201, response.content
    only_record(
        resource_type="alarm_audio",
        resource_id=str(ward.id),
        action="update",
        detail={"operation": "pause"},
    )


def test_an_unparseable_body_is_a_refused_change_not_a_500(nurse_api, patient):
    response = nurse_api.generic(
        "PATCH", f"/api/patients/{patient.id}/", b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
    only_record(action="update", outcome="refused", detail=None)
