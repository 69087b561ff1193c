"""What integrators' tools rely on: lenient handling, totals and _summary=count, _include,
_lastUpdated, Patient by name and birth date, Observation.status from the reading, and
fhirpy (count, include, a lenient search, paging) against a live server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from fhir_api.tests.validation import assert_outcome, assert_r4, fhir_json
from hl7v2.models import ObservationStatus
from monitoring.models import Reading
from testing.factories import DeviceFactory, PatientFactory, UserFactory

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
LENIENT = {"HTTP_PREFER": "handling=lenient"}


def _readings(patient, device, n: int, *, start=T0) -> list[Reading]:
    return [
        Reading.objects.create(
            patient=patient,
            device=device,
            metric="heart_rate",
            value=70 + i,
            recorded_at=start + timedelta(seconds=i),
            received_at=start + timedelta(seconds=i, milliseconds=100),
            seq=i + 1,
        )
        for i in range(n)
    ]


@pytest.mark.django_db
def test_an_unknown_parameter_is_ignored_under_lenient_handling(nurse_api, device):
    _readings(device.patient, device, 2)
    url = f"/fhir/Observation?patient={device.patient_id}&valueQuantity=gt100"
    assert_outcome(nurse_api.get(url), 400, "invalid")  # strict, the default
    strict = nurse_api.get(url, HTTP_PREFER="handling=strict")
    assert strict.status_code == 400
    bundle = fhir_json(nurse_api.get(url, **LENIENT), "Bundle")
    assert len(bundle["entry"]) == 2
    (self_link,) = [link["url"] for link in bundle["link"] if link["relation"] == "self"]
    assert "valueQuantity" not in self_link  # the parameters used


@pytest.mark.django_db
def test_summary_count_and_totals(nurse_api, device):
    _readings(device.patient, device, 5)
    base = f"/fhir/Observation?patient={device.patient_id}"
    for query in ("&_summary=count", "&_count=0"):
        bundle = fhir_json(nurse_api.get(base + query), "Bundle")
        assert bundle["total"] == 5 and "entry" not in bundle
    page = fhir_json(nurse_api.get(base + "&_count=2&_total=accurate"), "Bundle")
    assert page["total"] == 5 and len(page["entry"]) == 2
    assert "total" not in fhir_json(nurse_api.get(base + "&_count=2"), "Bundle")
    # Patients, devices and flags are counted on every search.
    patients = fhir_json(nurse_api.get("/fhir/Patient"), "Bundle")
    assert patients["total"] == 1
    assert fhir_json(nurse_api.get("/fhir/Device?_summary=count"), "Bundle")["total"] == 1


@pytest.mark.django_db
def test_include_adds_the_patient_and_the_devices(nurse_api, device):
    _readings(device.patient, device, 3)
    url = (
        f"/fhir/Observation?patient={device.patient_id}"
        "&_include=Observation:patient&_include=Observation:device"
    )
    bundle = fhir_json(nurse_api.get(url), "Bundle")
    modes = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]]
    assert modes == [("Observation", "match")] * 3 + [("Patient", "include"), ("Device", "include")]
    for entry in bundle["entry"]:
        assert_r4(entry["resource"])
    assert_outcome(
        nurse_api.get(f"/fhir/Observation?patient={device.patient_id}&_include=Observation:foo"),
        400,
        "invalid",
    )


@pytest.mark.django_db
def test_last_updated_filters_on_when_the_reading_was_stored(nurse_api, device):
    rows = _readings(device.patient, device, 4)
    Reading.objects.filter(id=rows[0].id).update(received_at=T0 + timedelta(hours=2))
    url = f"/fhir/Observation?patient={device.patient_id}&_lastUpdated=ge2026-12-01T11:00:00Z"
    bundle = fhir_json(nurse_api.get(url), "Bundle")
    assert [e["resource"]["id"] for e in bundle["entry"]] == [str(rows[0].id)]
    assert bundle["entry"][0]["resource"]["meta"]["lastUpdated"].startswith("2026-12-01T12:00")


@pytest.mark.django_db
def test_patients_by_name_and_birthdate(nurse_api, ward):
    ada = PatientFactory(ward=ward, name="Ada Lovelace", date_of_birth=date(1990, 12, 10))
    grace = PatientFactory(ward=ward, name="Grace Hopper", date_of_birth=date(1985, 1, 2))

    def ids(query: str) -> list[int]:
        bundle = fhir_json(nurse_api.get(f"/fhir/Patient?{query}"), "Bundle")
        return [int(e["resource"]["id"]) for e in bundle.get("entry", [])]

    assert ids("name=love") == [ada.id]  # a name part that starts so, any case
    assert ids("name=GRACE") == [grace.id]
    assert ids("name=ace") == []  # not the middle of a word
    assert ids("name=ada,grace") == [ada.id, grace.id]
    assert ids("birthdate=1990-12-10") == [ada.id]
    assert ids("birthdate=lt1990-01-01") == [grace.id]
    assert ids("birthdate=1985") == [grace.id]
    assert ids("name=ada&birthdate=1985") == []


@pytest.mark.django_db
def test_observation_status_follows_the_readings_result_status(nurse_api, device):
    final, preliminary, corrected = _readings(device.patient, device, 3)
    ObservationStatus.objects.create(device_id=device.id, seq=2, status="preliminary")
    ObservationStatus.objects.create(device_id=device.id, seq=3, status="corrected")
    read = fhir_json(nurse_api.get(f"/fhir/Observation/{preliminary.id}"), "Observation")
    assert read["status"] == "preliminary"
    bundle = fhir_json(nurse_api.get(f"/fhir/Observation?patient={device.patient_id}"), "Bundle")
    assert {e["resource"]["id"]: e["resource"]["status"] for e in bundle["entry"]} == {
        str(final.id): "final",
        str(preliminary.id): "preliminary",
        str(corrected.id): "corrected",
    }


@pytest.mark.django_db
def test_the_capability_statement_lists_what_works(api):
    statement = fhir_json(api.get("/fhir/metadata"), "CapabilityStatement")
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    params = {t: {p["name"] for p in r.get("searchParam", [])} for t, r in by_type.items()}
    assert {"name", "birthdate", "identifier", "_total", "_summary"} <= params["Patient"]
    assert {"_lastUpdated", "_total", "_summary", "date", "code"} <= params["Observation"]
    assert set(by_type["Observation"]["searchInclude"]) == {
        "Observation:patient",
        "Observation:subject",
        "Observation:device",
    }
    assert "lenient" in statement["rest"][0]["documentation"]


# --- fhirpy against a live server -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fhirpy_counts_includes_pages_and_searches_leniently(live_server):
    from fhirpy import SyncFHIRClient

    device = DeviceFactory()
    nurse = UserFactory(places=[device.place])
    _readings(device.patient, device, 7)
    token = str(RefreshToken.for_user(nurse).access_token)
    client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {token}")

    observations = client.resources("Observation").search(patient=device.patient_id)
    assert observations.count() == 7
    assert len(observations.limit(3).fetch_all()) == 7  # follows the next links
    bundle = observations.include("Observation", "patient").limit(2).fetch_raw()
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [e["resource"]["resourceType"] for e in included] == ["Patient"]
    assert client.resources("Patient").count() == 1

    lenient = SyncFHIRClient(
        f"{live_server.url}/fhir",
        authorization=f"Bearer {token}",
        extra_headers={"Prefer": "handling=lenient"},
    )
    found = lenient.resources("Observation").search(patient=device.patient_id, foo="bar").fetch()
    assert len(found) == 7
