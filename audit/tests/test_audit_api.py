"""GET /api/audit/ and the export: administrators only, the contract's record shape, filters,
cursor pages; reading and exporting the trail are themselves recorded."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditRecord
from audit.services import Actor, Origin, audit_record
from testing.factories import PatientFactory

pytestmark = pytest.mark.django_db


def record(**overrides):
    values = {
        "actor": Actor(type="user", id=7, role="nurse", label="n@example.org"),
        "action": "read",
        "outcome": "success",
        "channel": "rest",
        "origin": Origin(address="10.0.0.5", user_agent="ua", request_id="r1"),
        "resource_type": "patient",
        "resource_id": 3,
        "patient": 3,
    }
    return audit_record(**{**values, **overrides})


def test_only_admins_read_the_trail(nurse_api, doctor_api, api):
    assert nurse_api.get("/api/audit/").status_code == 403
    assert doctor_api.get("/api/audit/").status_code == 403
    assert api.get("/api/audit/").status_code == 401


def test_record_shape(admin_api):
    made = record(query={"search": "x"})
    body = admin_api.get("/api/audit/").json()
    assert body["next"] is None and "count" not in body
    item = body["results"][0]
    assert item == {
        "id": made.id,
        "at": made.at.isoformat().replace("+00:00", "Z"),
        "actor": {"type": "user", "id": 7, "role": "nurse", "label": "n@example.org"},
        "address": "10.0.0.5",
        "user_agent": "ua",
        "channel": "rest",
        "action": "read",
        "resource": {"type": "patient", "id": "3"},
        "patient": 3,
        "patients": [3],
        "outcome": "success",
        "request_id": "r1",
        "query": {"search": "x"},
        "detail": None,
    }


def test_filters(admin_api, admin_user):
    now = timezone.now()
    old = record(at=now - timedelta(days=2), patient=4, resource_id=4)
    refused = record(outcome="not_found", patient=5, resource_id=5)
    snapshot = record(resource_type="ward", resource_id=1, patient=None, patients=[3, 9])
    other_actor = record(actor=Actor(type="user", id=8, role="doctor"), action="search")

    def ids(**params):
        body = admin_api.get("/api/audit/", params).json()
        return {item["id"] for item in body["results"] if item["resource"]["type"] != "audit"}

    assert ids(patient=9) == {snapshot.id}
    assert ids(patient=4) == {old.id}
    assert ids(outcome="not_found") == {refused.id}
    assert ids(actor=8) == {other_actor.id}
    assert ids(action="search", actor=8) == {other_actor.id}
    assert old.id not in ids(**{"from": (now - timedelta(days=1)).isoformat()})
    assert ids(to=(now - timedelta(days=1)).isoformat()) == {old.id}
    assert admin_api.get("/api/audit/", {"from": "yesterday"}).status_code == 400
    assert admin_api.get("/api/audit/", {"action": "nonsense"}).status_code == 400
    assert admin_api.get("/api/audit/", {"patient": "x"}).status_code == 400


def test_reading_the_trail_is_recorded(admin_api, admin_user):
    admin_api.get("/api/audit/", {"patient": 3})
    mine = AuditRecord.objects.get(resource_type="audit")
    assert (mine.action, mine.actor_id, mine.query) == ("search", admin_user.id, {"patient": "3"})
    assert mine.patient_id == 3


def test_cursor_pages(admin_api):
    for n in range(5):
        record(resource_id=n)
    first = admin_api.get("/api/audit/", {"page_size": 3}).json()
    assert len(first["results"]) == 3 and first["next"]
    second = admin_api.get(first["next"]).json()
    seen = [item["id"] for item in first["results"] + second["results"]]
    assert len(seen) == len(set(seen))
    assert sorted(seen, reverse=True) == seen


def test_export_csv_and_ndjson_are_audited(admin_api, admin_user):
    patient = PatientFactory()
    record(patient=patient.id, resource_id=patient.id)
    response = admin_api.get("/api/audit/export/", {"patient": patient.id})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["patient"] for row in rows] == [str(patient.id)]
    response = admin_api.get("/api/audit/export/", {"file_format": "ndjson", "action": "export"})
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    # The export's own record is written before the file streams: it lists itself too.
    assert [(item["action"], item["actor"]["id"]) for item in lines] == [
        ("export", admin_user.id)
    ] * 2
    assert AuditRecord.objects.filter(action="export").count() == 2


def test_export_refused_to_nurses(nurse_api):
    assert nurse_api.get("/api/audit/export/").status_code == 403
    assert AuditRecord.objects.get().outcome == "refused"
