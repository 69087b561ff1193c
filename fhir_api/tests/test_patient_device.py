from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from fhir_api.tests.validation import assert_outcome, fhir_json
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, WardFactory

pytestmark = pytest.mark.django_db


def mrn_system(place_id):
    return f"urn:patient-monitor:place:{place_id}:mrn"


def test_patient_read(nurse_api, patient):
    patient.date_of_birth = "1990-04-02"
    patient.save(update_fields=["date_of_birth"])
    resource = fhir_json(nurse_api.get(f"/fhir/Patient/{patient.id}"), "Patient")
    assert resource["id"] == str(patient.id)
    (identifier,) = resource["identifier"]
    assert identifier["value"] == patient.mrn
    assert identifier["system"] == mrn_system(patient.place_id)
    assert identifier["type"]["coding"][0]["code"] == "MR"
    assert resource["name"] == [{"text": patient.name}]
    assert resource["gender"] == "female"
    assert resource["birthDate"] == "1990-04-02"
    assert resource["managingOrganization"] == {"display": patient.place.name}


def test_patient_read_is_scoped(outsider_api, admin_api, patient):
    assert_outcome(outsider_api.get(f"/fhir/Patient/{patient.id}"), 404, "not-found")
    fhir_json(admin_api.get(f"/fhir/Patient/{patient.id}"), "Patient")


@pytest.mark.parametrize("ref", ["999999", "abc", "1.5"])
def test_unknown_patient_is_404(admin_api, ref):
    assert_outcome(admin_api.get(f"/fhir/Patient/{ref}"), 404, "not-found")


def _ids(bundle):
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def test_patient_search_by_mrn(nurse_api, patient, place):
    PatientFactory(ward=WardFactory(place=place))  # another patient, not matched
    bundle = fhir_json(nurse_api.get("/fhir/Patient", {"identifier": patient.mrn}), "Bundle")
    assert bundle["type"] == "searchset"
    assert _ids(bundle) == [str(patient.id)]
    assert bundle["entry"][0]["fullUrl"] == f"http://testserver/fhir/Patient/{patient.id}"
    assert bundle["link"] == [
        {"relation": "self", "url": f"http://testserver/fhir/Patient?identifier={patient.mrn}"}
    ]

    token = f"{mrn_system(patient.place_id)}|{patient.mrn}"
    bundle = fhir_json(nurse_api.get("/fhir/Patient", {"identifier": token}), "Bundle")
    assert _ids(bundle) == [str(patient.id)]
    for miss in (
        f"{mrn_system(patient.place_id + 1)}|{patient.mrn}",
        f"|{patient.mrn}",
        f"http://other|{patient.mrn}",
        "NOPE",
    ):
        bundle = fhir_json(nurse_api.get("/fhir/Patient", {"identifier": miss}), "Bundle")
        assert "entry" not in bundle, miss


def test_patient_search_is_scoped(outsider_api, admin_api, patient):
    # The same MRN in another place: one patient per place.
    twin = PatientFactory(mrn=patient.mrn, ward=WardFactory(place=PlaceFactory()))
    bundle = fhir_json(outsider_api.get("/fhir/Patient", {"identifier": patient.mrn}), "Bundle")
    assert "entry" not in bundle
    bundle = fhir_json(admin_api.get("/fhir/Patient", {"identifier": patient.mrn}), "Bundle")
    assert _ids(bundle) == [str(patient.id), str(twin.id)]


def test_patient_search_pages_with_next_links(nurse_api, place):
    ward = WardFactory(place=place)
    patients = [PatientFactory(ward=ward) for _ in range(5)]
    url: str | None = "/fhir/Patient?_count=2"
    seen: list[str] = []
    while url:
        bundle = fhir_json(nurse_api.get(url), "Bundle")
        assert len(bundle.get("entry", [])) <= 2
        seen += _ids(bundle)
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        if url:
            assert parse_qs(urlparse(url).query)["_count"] == ["2"]
    assert seen == [str(p.id) for p in patients]


@pytest.mark.parametrize(
    "query",
    [
        {"family": "x"},  # not a parameter of ours
        {"birthdate": "1990-13"},
        {"_count": "-1"},
        {"_count": "ten"},
        {"_cursor": "junk"},
        {"identifier": "sys|"},
        {"_count": ["1", "2"]},
    ],
)
def test_patient_search_bad_parameters_are_400(nurse_api, query):
    assert_outcome(nurse_api.get("/fhir/Patient", query), 400, "invalid")


def test_device_read(nurse_api, device):
    resource = fhir_json(nurse_api.get(f"/fhir/Device/{device.id}"), "Device")
    assert resource["id"] == str(device.id)
    assert resource["serialNumber"] == device.serial
    assert resource["identifier"] == [
        {"system": "urn:patient-monitor:device-serial", "value": device.serial}
    ]
    assert resource["status"] == "active"
    assert resource["patient"] == {"reference": f"Patient/{device.patient_id}"}
    assert resource["deviceName"] == [{"name": device.model, "type": "model-name"}]
    assert resource["owner"] == {"display": device.place.name}


def test_unassigned_inactive_device(nurse_api, place):
    device = DeviceFactory(patient=None, place=place, is_active=False, model="")
    resource = fhir_json(nurse_api.get(f"/fhir/Device/{device.id}"), "Device")
    assert resource["status"] == "inactive"
    assert "patient" not in resource
    assert "deviceName" not in resource


def test_device_read_is_scoped(outsider_api, admin_api, device):
    assert_outcome(outsider_api.get(f"/fhir/Device/{device.id}"), 404, "not-found")
    assert_outcome(admin_api.get("/fhir/Device/999999"), 404, "not-found")
    fhir_json(admin_api.get(f"/fhir/Device/{device.id}"), "Device")


def test_device_search_by_patient_and_serial(nurse_api, device, place):
    other = DeviceFactory(patient=PatientFactory(ward=device.patient.ward))
    spare = DeviceFactory(patient=None, place=place)

    def ids(query):
        return _ids(fhir_json(nurse_api.get(f"/fhir/Device{query}"), "Bundle"))

    assert ids(f"?patient={device.patient_id}") == [str(device.id)]
    assert ids(f"?patient=Patient/{other.patient_id}") == [str(other.id)]
    assert ids(f"?identifier={spare.serial}") == [str(spare.id)]
    assert ids(f"?identifier=urn:patient-monitor:device-serial|{device.serial}") == [str(device.id)]
    assert ids(f"?identifier=http://other|{device.serial}") == []
    assert ids(f"?identifier={device.serial},{spare.serial}") == [str(device.id), str(spare.id)]
    assert ids("") == [str(device.id), str(other.id), str(spare.id)]
    first = fhir_json(nurse_api.get("/fhir/Device?_count=2"), "Bundle")
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert _ids(fhir_json(nurse_api.get(next_url), "Bundle")) == [str(spare.id)]


def test_device_search_is_scoped(outsider_api, admin_api, device):
    assert_outcome(outsider_api.get(f"/fhir/Device?patient={device.patient_id}"), 404, "not-found")
    bundle = fhir_json(outsider_api.get(f"/fhir/Device?identifier={device.serial}"), "Bundle")
    assert "entry" not in bundle
    bundle = fhir_json(admin_api.get(f"/fhir/Device?identifier={device.serial}"), "Bundle")
    assert _ids(bundle) == [str(device.id)]


@pytest.mark.parametrize("query", ["?serial=x", "?patient=Device/1", "?_count=-1", "?_cursor=x"])
def test_device_search_bad_parameters_are_400(nurse_api, query):
    assert_outcome(nurse_api.get(f"/fhir/Device{query}"), 400, "invalid")
