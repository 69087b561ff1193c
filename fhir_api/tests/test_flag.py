from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.models import Alert
from fhir_api.tests.validation import assert_outcome, fhir_json

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


def alert(patient, *, kind="bradycardia", priority="high", state="active", at=T0, **extra):
    return Alert.objects.create(
        patient=patient,
        kind=kind,
        priority=priority,
        state=state,
        message=f"{kind} on {patient.name}",
        raised_at=at,
        **extra,
    )


def _ids(bundle):
    return [int(e["resource"]["id"]) for e in bundle.get("entry", [])]


def test_open_alert_is_an_active_flag(nurse_api, device):
    a = alert(device.patient, device=device, priority="high")
    flag = fhir_json(nurse_api.get(f"/fhir/Flag/{a.id}"), "Flag")
    assert flag["status"] == "active"
    assert flag["subject"] == {"reference": f"Patient/{device.patient_id}"}
    assert flag["author"] == {"reference": f"Device/{device.id}"}
    assert flag["code"]["coding"] == [
        {"system": "urn:patient-monitor:alert-kind", "code": "bradycardia"}
    ]
    assert flag["code"]["text"] == a.message
    assert flag["category"][0]["coding"][0]["code"] == "clinical"
    assert datetime.fromisoformat(flag["period"]["start"]) == T0
    assert "end" not in flag["period"]
    (priority,) = flag["extension"]
    assert priority["url"] == "http://hl7.org/fhir/StructureDefinition/flag-priority"
    assert priority["valueCodeableConcept"]["coding"][0]["code"] == "PH"


def test_resolved_alert_is_an_inactive_flag_with_an_end(nurse_api, patient):
    a = alert(patient, priority="low", state="resolved", resolved_at=T0 + timedelta(minutes=3))
    flag = fhir_json(nurse_api.get(f"/fhir/Flag/{a.id}"), "Flag")
    assert flag["status"] == "inactive"
    assert datetime.fromisoformat(flag["period"]["end"]) == T0 + timedelta(minutes=3)
    assert flag["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "PL"
    assert "author" not in flag


def test_flag_search_by_patient_and_status(nurse_api, patient, obstetric_patient):
    resolved = alert(patient, kind="tachycardia", state="resolved", resolved_at=T0, at=T0)
    acked = alert(patient, kind="bradycardia", state="acknowledged", at=T0 + timedelta(minutes=1))
    active = alert(patient, kind="device_offline", at=T0 + timedelta(minutes=2), priority="medium")
    alert(obstetric_patient)  # another patient's

    def ids(query):
        return _ids(fhir_json(nurse_api.get(f"/fhir/Flag?patient={patient.id}{query}"), "Bundle"))

    assert ids("") == [active.id, acked.id, resolved.id]
    assert ids("&status=active") == [active.id, acked.id]
    assert ids("&status=inactive") == [resolved.id]
    assert ids("&status=active,inactive") == [active.id, acked.id, resolved.id]
    assert ids("&status=active&status=inactive") == []
    assert ids("&_count=2")[:2] == [active.id, acked.id]
    first = fhir_json(nurse_api.get(f"/fhir/Flag?patient={patient.id}&_count=2"), "Bundle")
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert _ids(fhir_json(nurse_api.get(next_url), "Bundle")) == [resolved.id]


@pytest.mark.parametrize(
    "query", ["", "&status=open", "&code=bradycardia", "&_cursor=abc", "&_count=x"]
)
def test_flag_search_bad_parameters_are_400(nurse_api, patient, query):
    path = f"/fhir/Flag?patient={patient.id}{query}" if query else "/fhir/Flag"
    assert_outcome(nurse_api.get(path), 400, "invalid")


def test_flags_are_scoped(outsider_api, admin_api, patient):
    a = alert(patient)
    assert_outcome(outsider_api.get(f"/fhir/Flag/{a.id}"), 404, "not-found")
    assert_outcome(outsider_api.get(f"/fhir/Flag?patient={patient.id}"), 404, "not-found")
    assert_outcome(admin_api.get("/fhir/Flag/999999"), 404, "not-found")
    fhir_json(admin_api.get(f"/fhir/Flag/{a.id}"), "Flag")
    assert _ids(fhir_json(admin_api.get(f"/fhir/Flag?patient={patient.id}"), "Bundle")) == [a.id]
