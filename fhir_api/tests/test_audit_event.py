"""GET /fhir/AuditEvent: the audit trail as BALP-shaped R4 AuditEvents, validated with
fhir.resources; HAPI's way: each create, read, search, update gives exactly one event with the
patient entity, the agent, the action and the outcome."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from fhir_api.tests.validation import assert_outcome, assert_r4, fhir_json
from testing.factories import PatientFactory

pytestmark = pytest.mark.django_db


def events(api, **params):
    bundle = fhir_json(api.get("/fhir/AuditEvent", params), "Bundle")
    found = [entry["resource"] for entry in bundle.get("entry", [])]
    for event in found:
        assert_r4(event, "AuditEvent")
        assert event["action"] in {"C", "R", "U", "D", "E"}
        assert event["outcome"] in {"0", "4", "8", "12"}
    return found


def patient_refs(event):
    return [
        e["what"]["reference"]
        for e in event.get("entity", [])
        if e.get("role", {}).get("code") == "1"
    ]


def test_each_interaction_is_one_balp_event(admin_api, nurse_api, nurse, ward):
    created = nurse_api.post(
        "/api/patients/",
        {"name": "A", "mrn": "AE-1", "sex": "F", "place": ward.place_id, "ward": ward.id},
    )
    pid = created.json()["id"]
    assert nurse_api.get(f"/fhir/Patient/{pid}").status_code == 200
    assert nurse_api.get("/fhir/Observation", {"patient": pid}).status_code == 200
    assert nurse_api.patch(f"/api/patients/{pid}/", {"bed": "9"}).status_code == 200
    found = events(admin_api, patient=pid)
    # Newest first: update, search, read, create (the admin's own search is not about pid).
    assert [(e["action"], e["subtype"][0]["code"]) for e in found] == [
        ("U", "update"),
        ("E", "search"),
        ("R", "read"),
        ("C", "create"),
    ]
    for event in found:
        assert patient_refs(event) == [f"Patient/{pid}"]
        assert event["outcome"] == "0"
        agent = event["agent"][0]
        assert agent["requestor"] is True
        assert agent["who"]["identifier"]["value"] == str(nurse.id)
        assert agent["network"] == {"address": "127.0.0.1", "type": "2"}
    read = found[2]
    assert read["meta"]["profile"] == [
        "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
    ]
    query = next(e for e in found[1]["entity"] if e["role"]["code"] == "24")
    assert base64.b64decode(query["query"]).decode() == f"patient={pid}"


def test_outsiders_read_is_a_minor_failure(admin_api, nurse_api):
    other = PatientFactory()
    assert nurse_api.get(f"/fhir/Patient/{other.id}").status_code == 404
    (event,) = events(admin_api, patient=other.id)
    assert (event["action"], event["outcome"]) == ("R", "4")
    assert patient_refs(event) == [f"Patient/{other.id}"]


def test_filters_date_agent_action_and_paging(admin_api, nurse_api, doctor_api, nurse, patient):
    nurse_api.get(f"/api/patients/{patient.id}/")
    doctor_api.get(f"/api/patients/{patient.id}/")
    nurse_api.get("/api/patients/", {"search": "x"})
    assert len(events(admin_api, agent=nurse.id, patient=patient.id)) == 1
    assert len(events(admin_api, action="R", patient=patient.id)) == 2
    soon = (timezone.now() + timedelta(hours=1)).isoformat()
    assert events(admin_api, date=f"ge{soon}") == []
    # (The administrator's own searches about the patient are events too: action E.)
    assert len(events(admin_api, patient=patient.id, action="R", date=f"le{soon}")) == 2
    first = fhir_json(admin_api.get("/fhir/AuditEvent", {"_count": 1}), "Bundle")
    assert [link["relation"] for link in first["link"]] == ["self", "next"]
    assert_outcome(admin_api.get("/fhir/AuditEvent", {"action": "Z"}), 400, "invalid")


def test_only_administrators(nurse_api):
    assert_outcome(nurse_api.get("/fhir/AuditEvent"), 403, "forbidden")
