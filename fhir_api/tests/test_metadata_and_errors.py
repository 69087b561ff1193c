from __future__ import annotations

import pytest
from django.db import OperationalError

from fhir_api import views
from fhir_api.tests.validation import assert_outcome, fhir_json

pytestmark = pytest.mark.django_db


def test_metadata_is_an_r4_capability_statement_without_auth(api):
    statement = fhir_json(api.get("/fhir/metadata"), "CapabilityStatement")
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert statement["implementation"]["url"] == "http://testserver/fhir/"
    (rest,) = statement["rest"]
    served = {r["type"]: r for r in rest["resource"]}
    assert set(served) == {"Patient", "Device", "Observation", "Flag", "AuditEvent"}
    assert {i["code"] for i in served["Device"]["interaction"]} == {"read", "search-type"}
    assert {i["code"] for i in served["AuditEvent"]["interaction"]} == {"search-type"}
    results = {"_count", "_summary", "_total"}
    assert {p["name"] for p in served["Device"]["searchParam"]} == {
        "patient",
        "identifier",
        *results,
    }
    assert {i["code"] for i in served["Observation"]["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in served["Observation"]["searchParam"]} == {
        "patient",
        "subject",
        "code",
        "category",
        "date",
        "_lastUpdated",
        "_sort",
        *results,
    }
    assert {p["name"] for p in served["Patient"]["searchParam"]} == {
        "identifier",
        "name",
        "birthdate",
        *results,
    }
    assert served["Observation"]["supportedProfile"] == [
        "http://hl7.org/fhir/StructureDefinition/heartrate",
        "http://hl7.org/fhir/StructureDefinition/vitalsigns",
    ]


def test_metadata_ignores_a_bad_token(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    fhir_json(api.get("/fhir/metadata"), "CapabilityStatement")


@pytest.mark.parametrize(
    "accept",
    ["application/fhir+json", "application/json", "application/fhir+json; fhirVersion=4.0", "*/*"],
)
def test_json_accept_headers_get_fhir_json(api, accept):
    fhir_json(api.get("/fhir/metadata", HTTP_ACCEPT=accept), "CapabilityStatement")


@pytest.mark.parametrize("fmt", ["json", "application/fhir+json", "application/json"])
def test_format_parameter_json(api, fmt):
    fhir_json(api.get("/fhir/metadata", {"_format": fmt}), "CapabilityStatement")


def test_xml_is_refused_with_406(api):
    assert_outcome(
        api.get("/fhir/metadata", HTTP_ACCEPT="application/fhir+xml"), 406, "not-supported"
    )
    assert_outcome(api.get("/fhir/metadata", {"_format": "xml"}), 406, "not-supported")


def test_writes_are_refused_with_405(api, nurse_api, patient):
    assert_outcome(api.post("/fhir/metadata", {}, format="json"), 405, "not-supported")
    for method in ("post", "put", "patch", "delete"):
        response = getattr(nurse_api, method)(
            f"/fhir/Patient/{patient.id}", {"resourceType": "Patient"}, format="json"
        )
        assert_outcome(response, 405, "not-supported")
        assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert_outcome(nurse_api.post("/fhir/Observation", {}, format="json"), 405, "not-supported")


def test_unknown_resource_types_are_404(api, nurse_api):
    assert_outcome(api.get("/fhir/Encounter/1"), 404, "not-found")
    assert_outcome(nurse_api.get("/fhir/Patient/1/_history"), 404, "not-found")
    assert_outcome(nurse_api.get("/fhir/"), 404, "not-found")


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Patient/1",
        "/fhir/Patient?identifier=x",
        "/fhir/Device/1",
        "/fhir/Device?patient=1",
        "/fhir/Observation/1",
        "/fhir/Observation?patient=1",
        "/fhir/Flag/1",
        "/fhir/Flag?patient=1",
    ],
)
def test_every_endpoint_needs_a_valid_token(api, path):
    response = api.get(path)
    assert_outcome(response, 401, "login")
    assert response["WWW-Authenticate"].startswith("Bearer")
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert_outcome(api.get(path), 401, "login")


def test_a_device_token_is_not_a_person(device):
    from testing.clients import device_client

    assert_outcome(device_client(device.token).get(f"/fhir/Device/{device.id}"), 401, "login")


def test_fhir_views_stay_out_of_the_openapi_schema(admin_api):
    response = admin_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert not [p for p in response.json()["paths"] if p.startswith("/fhir")]


def test_one_time_password_holders_are_403(patient):
    from testing.clients import bearer_client
    from testing.factories import UserFactory

    user = UserFactory(places=[patient.place], must_change_password=True)
    response = bearer_client(user).get(f"/fhir/Patient/{patient.id}")
    assert_outcome(response, 403, "forbidden")


def test_the_database_unavailable_is_a_503_operation_outcome(nurse_api, patient, monkeypatch):
    def unavailable(self, request, *args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(views.PatientReadView, "get", unavailable)
    nurse_api.raise_request_exception = False
    response = nurse_api.get(f"/fhir/Patient/{patient.id}")
    assert_outcome(response, 503, "transient")
    assert response["Retry-After"].isdigit()
