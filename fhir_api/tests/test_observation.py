from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from fhir_api.tests.validation import (
    assert_heart_rate_profile,
    assert_outcome,
    assert_vital_signs,
    fhir_json,
)
from monitoring.models import Reading
from testing.factories import PatientFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


def reading(patient, device=None, *, metric="heart_rate", value=120, at=T0, seq=None):
    return Reading.objects.create(
        patient=patient, device=device, metric=metric, value=value, recorded_at=at, seq=seq
    )


def _ids(bundle):
    return [int(e["resource"]["id"]) for e in bundle.get("entry", [])]


def _next(bundle):
    return next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


def test_heart_rate_observation(nurse_api, device):
    r = reading(device.patient, device, value=132, seq=7)
    observation = fhir_json(nurse_api.get(f"/fhir/Observation/{r.id}"), "Observation")
    assert_heart_rate_profile(observation)
    assert observation["id"] == str(r.id)
    assert observation["status"] == "final"
    assert observation["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"},
        {
            "system": "urn:iso:std:iso:11073:10101",
            "code": "147842",
            "display": "MDC_ECG_HEART_RATE",
        },
    ]
    assert observation["subject"] == {"reference": f"Patient/{device.patient_id}"}
    assert observation["device"] == {"reference": f"Device/{device.id}"}
    assert datetime.fromisoformat(observation["effectiveDateTime"]) == T0
    assert datetime.fromisoformat(observation["issued"]) == r.received_at
    assert observation["valueQuantity"] == {
        "value": 132,
        "unit": "/min",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }


def test_fetal_heart_rate_does_not_claim_the_heart_rate_profile(nurse_api, obstetric_patient):
    r = reading(obstetric_patient, metric="fetal_heart_rate", value=140)
    observation = fhir_json(nurse_api.get(f"/fhir/Observation/{r.id}"), "Observation")
    assert_vital_signs(observation)
    assert "profile" not in observation["meta"]
    assert observation["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "55283-6", "display": "Fetal Heart rate"}
    ]
    assert observation["valueQuantity"]["value"] == 140
    assert "device" not in observation  # entered by hand


def test_pulse_rate_is_coded_as_pulse_oximetry_not_ecg(nurse_api, device):
    ecg = reading(device.patient, device, value=72, seq=1)
    pulse = reading(device.patient, device, metric="pulse_rate", value=75, seq=2)
    observation = fhir_json(nurse_api.get(f"/fhir/Observation/{pulse.id}"), "Observation")
    assert_vital_signs(observation)
    assert "profile" not in observation["meta"]  # the heart-rate profile fixes LOINC 8867-4
    assert observation["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "8889-8", "display": "Heart rate by Pulse oximetry"},
        {
            "system": "urn:iso:std:iso:11073:10101",
            "code": "149530",
            "display": "MDC_PULS_OXIM_PULS_RATE",
        },
    ]
    assert observation["valueQuantity"]["value"] == 75
    found = fhir_json(
        nurse_api.get(
            f"/fhir/Observation?patient={device.patient_id}&code=http://loinc.org|8889-8"
        ),
        "Bundle",
    )
    assert _ids(found) == [pulse.id] and ecg.id not in _ids(found)


def test_metric_without_a_standard_code_is_not_exposed(nurse_api, obstetric_patient):
    toco = reading(obstetric_patient, metric="uterine_activity", value=40)
    hr = reading(
        obstetric_patient, metric="fetal_heart_rate", value=140, at=T0 - timedelta(seconds=1)
    )
    assert_outcome(nurse_api.get(f"/fhir/Observation/{toco.id}"), 404, "not-found")
    bundle = fhir_json(
        nurse_api.get("/fhir/Observation", {"patient": obstetric_patient.id}), "Bundle"
    )
    assert _ids(bundle) == [hr.id]


def test_observation_read_is_scoped(outsider_api, admin_api, patient):
    r = reading(patient)
    assert_outcome(outsider_api.get(f"/fhir/Observation/{r.id}"), 404, "not-found")
    assert_outcome(admin_api.get("/fhir/Observation/999999"), 404, "not-found")
    assert_outcome(admin_api.get("/fhir/Observation/x-1"), 404, "not-found")
    fhir_json(admin_api.get(f"/fhir/Observation/{r.id}"), "Observation")


def test_search_newest_first_with_codes(nurse_api, device, obstetric_patient):
    patient = device.patient
    hr = [
        reading(patient, device, value=100 + i, at=T0 + timedelta(seconds=i), seq=i)
        for i in range(3)
    ]
    fhr = reading(patient, metric="fetal_heart_rate", at=T0 + timedelta(seconds=10))
    reading(obstetric_patient, metric="heart_rate")  # another patient's

    bundle = fhir_json(nurse_api.get(f"/fhir/Observation?patient={patient.id}"), "Bundle")
    assert _ids(bundle) == [fhr.id, hr[2].id, hr[1].id, hr[0].id]
    assert _next(bundle) is None
    for entry in bundle["entry"]:
        assert_vital_signs(entry["resource"])
        assert entry["fullUrl"] == f"http://testserver/fhir/Observation/{entry['resource']['id']}"

    newest_hr_first = [hr[2].id, hr[1].id, hr[0].id]
    for code in (
        "http://loinc.org|8867-4",
        "urn:iso:std:iso:11073:10101|147842",
        "8867-4",
        "147842",
        "http://loinc.org|55283-6,http://loinc.org|8867-4",
    ):
        bundle = fhir_json(
            nurse_api.get("/fhir/Observation", {"patient": patient.id, "code": code}), "Bundle"
        )
        expected = [fhr.id, *newest_hr_first] if "55283-6" in code else newest_hr_first
        assert _ids(bundle) == expected, code
    for code in ("http://loinc.org|147842", "|8867-4", "http://loinc.org|1234-5"):
        bundle = fhir_json(
            nurse_api.get("/fhir/Observation", {"patient": patient.id, "code": code}), "Bundle"
        )
        assert "entry" not in bundle, code
    # Two code parameters are ANDed: nothing is both.
    bundle = fhir_json(
        nurse_api.get(f"/fhir/Observation?patient={patient.id}&code=8867-4&code=55283-6"),
        "Bundle",
    )
    assert "entry" not in bundle
    bundle = fhir_json(
        nurse_api.get(f"/fhir/Observation?subject=Patient/{patient.id}&category=vital-signs"),
        "Bundle",
    )
    assert len(_ids(bundle)) == 4
    bundle = fhir_json(
        nurse_api.get(f"/fhir/Observation?patient={patient.id}&category=laboratory"), "Bundle"
    )
    assert "entry" not in bundle


def test_search_by_date(nurse_api, patient):
    rows = [reading(patient, at=T0 + timedelta(minutes=i)) for i in range(5)]  # 10:00 .. 10:04

    def ids(**query):
        params = "&".join(
            f"{k}={v}" for key, vs in query.items() for k, v in [(key, x) for x in vs]
        )
        return _ids(
            fhir_json(nurse_api.get(f"/fhir/Observation?patient={patient.id}&{params}"), "Bundle")
        )

    newest = [r.id for r in reversed(rows)]
    assert ids(date=["ge2026-12-01T10:01:00Z", "le2026-12-01T10:03:00Z"]) == newest[1:4]
    assert ids(date=["gt2026-12-01T10:01:00Z", "lt2026-12-01T10:03:00Z"]) == newest[2:3]
    assert ids(date=["2026-12-01T10:02:00Z"]) == [rows[2].id]
    assert ids(date=["eq2026-12-01T10:02Z"]) == [rows[2].id]  # the whole minute
    assert ids(date=["ne2026-12-01T10:02:00Z"]) == [newest[0], newest[1], newest[3], newest[4]]
    assert ids(date=["2026-12-01"]) == newest  # the whole day (TIME_ZONE UTC)
    assert ids(date=["2026-12"]) == newest
    assert ids(date=["le2026-11-30"]) == []
    assert ids(date=["ge2026-12-01T15:31:00%2B05:30"]) == newest[:4]  # 10:01 UTC
    assert ids(date=["sa2026-12-01T10:03:00Z"]) == newest[:1]
    assert ids(date=["eb2026-12-01T10:01:00Z"]) == newest[4:]
    assert ids(date=["2026-12-01T10:00:00Z,2026-12-01T10:04:00Z"]) == [rows[4].id, rows[0].id]


@pytest.mark.parametrize(
    "query",
    [
        {"date": "ge2026-13-01"},
        {"date": "yesterday"},
        {"date": "ge2026-12-01T10:00:00"},  # a time needs a zone
        {"date": "2026-02-30"},
        {"_count": "-1"},
        {"_count": "abc"},
        {"_cursor": "bm90LWEtY3Vyc29y"},
        {"_cursor": "!!"},
        {"valueQuantity": "gt100"},
        {"code": "http://loinc.org|"},
        {"_sort": "date"},
        {"patient": "Device/1"},
        {"patient": "abc"},
    ],
)
def test_bad_search_parameters_are_400(nurse_api, patient, query):
    assert_outcome(
        nurse_api.get("/fhir/Observation", {"patient": patient.id, **query}), 400, "invalid"
    )


def test_unsupported_date_prefix_is_400(nurse_api, patient):
    response = nurse_api.get("/fhir/Observation", {"patient": patient.id, "date": "ap2026-12-01"})
    assert_outcome(response, 400, "not-supported")


def test_patient_is_required_and_single(nurse_api, patient):
    assert_outcome(nurse_api.get("/fhir/Observation"), 400, "invalid")
    other = PatientFactory(ward=patient.ward)
    assert_outcome(
        nurse_api.get(f"/fhir/Observation?patient={patient.id}&patient={other.id}"), 400, "invalid"
    )


def test_search_is_scoped(outsider_api, admin_api, patient):
    reading(patient)
    assert_outcome(outsider_api.get(f"/fhir/Observation?patient={patient.id}"), 404, "not-found")
    assert_outcome(admin_api.get("/fhir/Observation?patient=999999"), 404, "not-found")
    bundle = fhir_json(admin_api.get(f"/fhir/Observation?patient={patient.id}"), "Bundle")
    assert len(_ids(bundle)) == 1


def test_next_links_walk_every_reading_once_newest_first(nurse_api, device):
    patient = device.patient
    # Ties on recorded_at too: the cursor orders by (recorded_at, id).
    rows = [reading(patient, device, at=T0 + timedelta(seconds=i // 3), seq=i) for i in range(11)]
    url = f"/fhir/Observation?patient={patient.id}&code=http://loinc.org|8867-4&date=ge2026-12-01&_count=4"
    seen, pages = [], 0
    while url:
        bundle = fhir_json(nurse_api.get(url), "Bundle")
        pages += 1
        seen += _ids(bundle)
        self_link = bundle["link"][0]
        assert self_link["relation"] == "self"
        url = _next(bundle)
        if url:
            query = parse_qs(urlparse(url).query)
            assert query["code"] == ["http://loinc.org|8867-4"]
            assert query["date"] == ["ge2026-12-01"] and query["_count"] == ["4"]
    assert pages == 3
    assert seen == [r.id for r in sorted(rows, key=lambda r: (r.recorded_at, r.id), reverse=True)]


def test_count_above_the_maximum_is_capped(nurse_api, patient, settings):
    settings.FHIR_MAX_COUNT = 2
    for i in range(3):
        reading(patient, at=T0 + timedelta(seconds=i))
    bundle = fhir_json(nurse_api.get(f"/fhir/Observation?patient={patient.id}&_count=50"), "Bundle")
    assert len(_ids(bundle)) == 2
    assert _next(bundle) is not None


def test_search_costs_the_same_queries_for_any_page_size(
    nurse_api, patient, django_assert_num_queries
):
    for i in range(30):
        reading(patient, at=T0 + timedelta(seconds=i))
    # user, place ids, patient, readings, the audit record
    with django_assert_num_queries(5):
        bundle = fhir_json(
            nurse_api.get(f"/fhir/Observation?patient={patient.id}&_count=25"), "Bundle"
        )
    assert len(bundle["entry"]) == 25


def test_ids_beyond_64_bits_find_nothing(nurse_api, patient):
    huge = "9" * 30
    assert_outcome(nurse_api.get(f"/fhir/Observation/{huge}"), 404, "not-found")
    assert_outcome(nurse_api.get(f"/fhir/Patient/{huge}"), 404, "not-found")
    assert_outcome(nurse_api.get(f"/fhir/Observation?patient={huge}"), 404, "not-found")
    from fhir_api.search import cursor_encode

    cursor = cursor_encode(["2026-12-01T10:00:00+00:00", 2**64])
    assert_outcome(
        nurse_api.get(f"/fhir/Observation?patient={patient.id}&_cursor={cursor}"), 400, "invalid"
    )


@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59Z", "0000-01-01", "2026-12-01T10:00:00+25:00"]
)
def test_dates_out_of_range_are_400(nurse_api, patient, value):
    response = nurse_api.get("/fhir/Observation", {"patient": patient.id, "date": value})
    assert_outcome(response, 400, "invalid")
