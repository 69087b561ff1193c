from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clinical import services
from clinical.models import Patient
from testing.assertions import assert_anonymous_refused, assert_error, assert_json, assert_sees_only
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, WardFactory, patient_raw

pytestmark = pytest.mark.django_db


URL = "/api/patients/"


def detail(patient: Patient) -> str:
    return f"{URL}{patient.id}/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [p["id"] for p in response.json()["results"]]


# --- Authentication and visibility -----------------------------------------------------------


def test_anonymous_is_refused(api, patient, ward):
    create, change = patient_raw(ward), {"bed": "X"}
    assert_anonymous_refused(api, URL, detail(patient), create=create, change=change)
    assert_error(api.post(f"{detail(patient)}discharge/"), 401, "not_authenticated")


@pytest.mark.parametrize("client", ["doctor_api", "nurse_api"])
def test_members_see_only_patients_of_their_places(request, client, patient):
    other = PatientFactory()
    api = request.getfixturevalue(client)
    assert_sees_only(api, URL, patient, other)
    assert_error(api.patch(detail(other), {"bed": "X"}), 404, "not_found")
    assert_error(api.post(f"{detail(other)}discharge/"), 404, "not_found")


def test_admin_sees_all_patients(admin_api, patient):
    other = PatientFactory()
    assert set(ids(admin_api.get(URL))) == {patient.id, other.id}


def test_patient_shape_with_and_without_device(nurse_api, patient):
    body = nurse_api.get(detail(patient)).json()
    assert body == {
        "id": patient.id,
        "name": patient.name,
        "mrn": patient.mrn,
        "date_of_birth": None,
        "sex": "F",
        "monitoring_profile": "adult",
        "place": patient.place_id,
        "ward": patient.ward_id,
        "bed": patient.bed,
        "admitted_at": body["admitted_at"],
        "discharged_at": None,
        "device": None,
    }
    device = DeviceFactory(patient=patient)
    assert nurse_api.get(detail(patient)).json()["device"] == device.id


# --- Create ----------------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["admin_api", "doctor_api", "nurse_api"])
def test_clinicians_admit_patients_in_their_place(request, client, ward):
    api = request.getfixturevalue(client)
    response = api.post(URL, patient_raw(ward))
    body = assert_json(response, 201)
    assert body["mrn"] == "BLR-000123"
    assert body["device"] is None
    assert body["discharged_at"] is None
    patient = Patient.objects.get(id=body["id"])
    assert (patient.place_id, patient.ward_id, patient.bed) == (ward.place_id, ward.id, "L-07")
    assert abs(patient.admitted_at - timezone.now()) < timedelta(minutes=1)


def test_ward_and_bed_are_optional(nurse_api, place):
    response = nurse_api.post(URL, {"name": "A", "mrn": "1", "sex": "M", "place": place.id})
    assert response.status_code == 201, response.content
    assert response.json()["ward"] is None
    assert response.json()["monitoring_profile"] == "adult"


@pytest.mark.parametrize("client", ["doctor_api", "nurse_api"])
def test_admitting_into_a_place_you_do_not_belong_to_is_400_on_place(request, client):
    foreign_ward = WardFactory()
    api = request.getfixturevalue(client)
    assert_error(api.post(URL, patient_raw(foreign_ward)), 400, "validation_error", field="place")
    assert not Patient.objects.exists()


def test_a_ward_you_cannot_see_behaves_as_nonexistent(nurse_api, ward):
    foreign_ward = WardFactory()
    payload = patient_raw(ward, ward=foreign_ward.id)
    assert_error(nurse_api.post(URL, payload), 400, "validation_error", field="ward")
    assert_error(
        nurse_api.post(URL, patient_raw(ward, ward=999999)), 400, "validation_error", field="ward"
    )


def test_ward_must_belong_to_the_patients_place(admin_api, ward):
    other_place_ward = WardFactory()
    payload = patient_raw(ward, ward=other_place_ward.id)
    error = assert_error(admin_api.post(URL, payload), 400, "validation_error")
    assert list(error["details"]) == ["ward"]


def test_member_of_two_places_cannot_mix_them(doctor, doctor_api, ward):
    second = PlaceFactory()
    doctor.places.add(second)
    payload = patient_raw(ward, place=second.id)
    assert_error(doctor_api.post(URL, payload), 400, "validation_error", field="ward")


def test_duplicate_mrn_in_a_place_is_a_conflict(nurse_api, patient, ward):
    assert_error(
        nurse_api.post(URL, patient_raw(ward, mrn=patient.mrn)), 409, "conflict", field="mrn"
    )
    assert Patient.objects.filter(mrn=patient.mrn).count() == 1


def test_same_mrn_in_another_place_is_fine(admin_api, patient):
    other_ward = WardFactory()
    response = admin_api.post(URL, patient_raw(other_ward, mrn=patient.mrn))
    assert response.status_code == 201


def test_database_constraint_backs_the_mrn_check(nurse_api, patient, ward, monkeypatch):
    # Two admissions racing past the check: the unique constraint still answers 409.
    monkeypatch.setattr(services, "_patient_mrn_check", lambda **kwargs: None)
    assert_error(nurse_api.post(URL, patient_raw(ward, mrn=patient.mrn)), 409, "conflict")


def test_date_of_birth_may_not_be_in_the_future(nurse_api, ward):
    future = (timezone.now() + timedelta(days=2)).date().isoformat()
    error = assert_error(
        nurse_api.post(URL, patient_raw(ward, date_of_birth=future)), 400, "validation_error"
    )
    assert list(error["details"]) == ["date_of_birth"]
    today = timezone.localdate().isoformat()
    assert nurse_api.post(URL, patient_raw(ward, date_of_birth=today)).status_code == 201


def test_date_of_birth_must_be_plausible(nurse_api, ward):
    payload = patient_raw(ward, date_of_birth="0001-01-01")
    error = assert_error(nurse_api.post(URL, payload), 400, "validation_error")
    assert list(error["details"]) == ["date_of_birth"]


def test_admission_may_not_precede_birth(nurse_api, ward):
    payload = patient_raw(ward, date_of_birth="2020-05-01", admitted_at="2019-01-01T00:00:00Z")
    error = assert_error(nurse_api.post(URL, payload), 400, "validation_error")
    assert list(error["details"]) == ["admitted_at"]


def test_no_admission_to_an_inactive_place(admin_api, nurse_api, ward, patient):
    closed_ward = WardFactory(place=PlaceFactory(is_active=False))
    assert_error(
        admin_api.post(URL, patient_raw(closed_ward)), 400, "validation_error", field="place"
    )
    payload = {"place": closed_ward.place_id, "ward": closed_ward.id}
    assert_error(admin_api.patch(detail(patient), payload), 400, "validation_error", field="place")
    # Patients already there stay manageable when their place closes.
    ward.place.is_active = False
    ward.place.save()
    assert nurse_api.patch(detail(patient), {"bed": "B-9"}).status_code == 200


def test_discharge_must_follow_admission(nurse_api, ward):
    admitted = timezone.now() - timedelta(hours=5)
    payload = patient_raw(
        ward,
        admitted_at=admitted.isoformat(),
        discharged_at=(admitted - timedelta(minutes=1)).isoformat(),
    )
    error = assert_error(nurse_api.post(URL, payload), 400, "validation_error")
    assert list(error["details"]) == ["discharged_at"]
    payload["discharged_at"] = admitted.isoformat()
    assert_error(nurse_api.post(URL, payload), 400, "validation_error")
    payload["discharged_at"] = (admitted + timedelta(hours=1)).isoformat()
    assert nurse_api.post(URL, payload).status_code == 201


def test_admission_and_discharge_may_not_be_in_the_future(nurse_api, ward):
    later = (timezone.now() + timedelta(days=1)).isoformat()
    assert_error(
        nurse_api.post(URL, patient_raw(ward, admitted_at=later)),
        400,
        "validation_error",
        field="admitted_at",
    )
    assert_error(
        nurse_api.post(URL, patient_raw(ward, discharged_at=later)),
        400,
        "validation_error",
        field="discharged_at",
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sex": "X"}, "sex"),
        ({"sex": ""}, "sex"),
        ({"monitoring_profile": "neonatal"}, "monitoring_profile"),
        ({"name": ""}, "name"),
        ({"mrn": ""}, "mrn"),
        ({"mrn": "x" * 65}, "mrn"),
        ({"bed": "x" * 33}, "bed"),
        ({"date_of_birth": "12/04/1995"}, "date_of_birth"),
        ({"admitted_at": "yesterday"}, "admitted_at"),
        ({"place": None}, "place"),
        ({"place": "abc"}, "place"),
        ({"place": 999999}, "place"),
        ({"ward": [1]}, "ward"),
    ],
)
def test_invalid_patient_is_400(nurse_api, ward, overrides, field):
    assert_error(
        nurse_api.post(URL, patient_raw(ward, **overrides)), 400, "validation_error", field=field
    )


@pytest.mark.parametrize("missing", ["name", "mrn", "sex", "place"])
def test_required_fields(nurse_api, ward, missing):
    payload = patient_raw(ward)
    del payload[missing]
    assert_error(nurse_api.post(URL, payload), 400, "validation_error", field=missing)


def test_list_payload_is_400_not_500(nurse_api, ward):
    assert_error(nurse_api.post(URL, [patient_raw(ward)]), 400, "validation_error")


# --- Update ----------------------------------------------------------------------------------


def test_nurse_moves_a_patient_to_another_ward_and_bed(nurse_api, patient, place):
    hdu = WardFactory(place=place, name="Adult HDU")
    response = nurse_api.patch(detail(patient), {"ward": hdu.id, "bed": "H-02"})
    assert response.status_code == 200, response.content
    patient.refresh_from_db()
    assert (patient.ward_id, patient.bed) == (hdu.id, "H-02")


def test_put_replaces_the_patient(doctor_api, patient, ward):
    response = doctor_api.put(detail(patient), patient_raw(ward, name="Renamed"))
    assert response.status_code == 200, response.content
    patient.refresh_from_db()
    assert (patient.name, patient.mrn, patient.monitoring_profile) == (
        "Renamed",
        "BLR-000123",
        "obstetric",
    )


def test_update_keeps_the_rules(nurse_api, patient):
    other = PatientFactory(ward=patient.ward)
    assert_error(nurse_api.patch(detail(other), {"mrn": patient.mrn}), 409, "conflict")
    foreign_ward_same_role = WardFactory()
    for field, value in (
        ("ward", foreign_ward_same_role.id),
        ("place", foreign_ward_same_role.place_id),
        ("discharged_at", "2000-01-01T00:00:00Z"),
    ):
        response = nurse_api.patch(detail(other), {field: value})
        assert_error(response, 400, "validation_error", field=field)
    assert nurse_api.patch(detail(other), {"mrn": other.mrn}).status_code == 200


def test_moving_a_patient_to_another_place_keeps_ward_in_place(admin_api, patient):
    target = WardFactory()
    assert_error(
        admin_api.patch(detail(patient), {"place": target.place_id}),
        400,
        "validation_error",
        field="ward",
    )
    response = admin_api.patch(detail(patient), {"place": target.place_id, "ward": target.id})
    assert response.status_code == 200, response.content


def test_a_patient_with_a_device_does_not_change_place(admin_api, device):
    target = WardFactory()
    payload = {"place": target.place_id, "ward": target.id}
    assert_error(
        admin_api.patch(detail(device.patient), payload), 400, "validation_error", field="place"
    )


def test_device_is_read_only(nurse_api, patient):
    device = DeviceFactory(patient=PatientFactory(ward=patient.ward))
    response = nurse_api.patch(detail(patient), {"device": device.id})
    assert response.status_code == 200
    assert response.json()["device"] is None


def test_malformed_ids_are_404(nurse_api):
    assert_error(nurse_api.get(f"{URL}abc/"), 404, "not_found")
    assert_error(nurse_api.get(f"{URL}{10**20}/"), 404, "not_found")


def test_delete_is_not_offered(admin_api, patient):
    assert_error(admin_api.delete(detail(patient)), 405, "method_not_allowed")
    assert Patient.objects.filter(id=patient.id).exists()


# --- Discharge -------------------------------------------------------------------------------


def test_nurse_discharges_a_patient_once(nurse_api, patient):
    response = nurse_api.post(f"{detail(patient)}discharge/")
    assert response.status_code == 200, response.content
    assert response.json()["discharged_at"] is not None
    patient.refresh_from_db()
    assert patient.discharged_at is not None
    assert_error(nurse_api.post(f"{detail(patient)}discharge/"), 409, "conflict")


def test_discharge_at_a_given_time(nurse_api, patient):
    patient.admitted_at = timezone.now() - timedelta(hours=6)
    patient.save(update_fields=["admitted_at"])
    at = timezone.now() - timedelta(seconds=30)
    response = nurse_api.post(f"{detail(patient)}discharge/", {"discharged_at": at.isoformat()})
    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.discharged_at == at
    other = PatientFactory(ward=patient.ward)
    before = (other.admitted_at - timedelta(days=1)).isoformat()
    assert_error(
        nurse_api.post(f"{detail(other)}discharge/", {"discharged_at": before}),
        400,
        "validation_error",
        field="discharged_at",
    )
    assert_error(
        nurse_api.post(f"{detail(other)}discharge/", {"discharged_at": "soon"}),
        400,
        "validation_error",
        field="discharged_at",
    )


def test_discharge_frees_the_device(nurse_api, device):
    patient = device.patient
    response = nurse_api.post(f"{detail(patient)}discharge/")
    assert response.status_code == 200
    assert response.json()["device"] is None
    device.refresh_from_db()
    assert device.patient_id is None
    assert device.place_id == patient.place_id and device.is_active


def test_discharging_by_patch_frees_the_device_and_readmission_works(nurse_api, device):
    patient = device.patient
    patient.admitted_at = timezone.now() - timedelta(days=1)
    patient.save()
    at = (timezone.now() - timedelta(minutes=5)).isoformat()
    response = nurse_api.patch(detail(patient), {"discharged_at": at})
    assert response.status_code == 200, response.content
    assert response.json()["device"] is None
    device.refresh_from_db()
    assert device.patient_id is None

    response = nurse_api.patch(detail(patient), {"discharged_at": None})
    assert response.status_code == 200
    assert response.json()["discharged_at"] is None
    assert nurse_api.get(URL, {"active": "true"}).json()["count"] == 1


def test_other_changes_keep_the_device(nurse_api, device):
    response = nurse_api.patch(detail(device.patient), {"bed": "L-12"})
    assert response.json()["device"] == device.id


# --- Lists -----------------------------------------------------------------------------------


@pytest.fixture
def census(place):
    labour = WardFactory(place=place, name="Labour Ward")
    hdu = WardFactory(place=place, name="Adult HDU")
    now = timezone.now()
    return {
        "priya": PatientFactory(
            ward=labour, name="Priya Sharma", mrn="OB-1", bed="L-01",
            monitoring_profile="obstetric", admitted_at=now - timedelta(days=2),
        ),
        "anjali": PatientFactory(
            ward=labour, name="Anjali Iyer", mrn="OB-2", bed="L-02",
            monitoring_profile="obstetric", admitted_at=now - timedelta(days=1),
            discharged_at=now - timedelta(hours=1),
        ),
        "ravi": PatientFactory(
            ward=hdu, name="Ravi Kumar", mrn="AD-1", bed="H-01", sex="M",
            admitted_at=now - timedelta(hours=3),
        ),
        "labour": labour,
        "hdu": hdu,
    }  # fmt: skip


def test_filters(nurse_api, census):
    c = census
    assert ids(nurse_api.get(URL, {"ward": c["labour"].id})) == [c["priya"].id, c["anjali"].id]
    assert ids(nurse_api.get(URL, {"monitoring_profile": "adult"})) == [c["ravi"].id]
    assert ids(nurse_api.get(URL, {"sex": "M"})) == [c["ravi"].id]
    assert ids(nurse_api.get(URL, {"place": c["ravi"].place_id})) == ids(nurse_api.get(URL))
    assert set(ids(nurse_api.get(URL, {"active": "true"}))) == {c["priya"].id, c["ravi"].id}
    assert ids(nurse_api.get(URL, {"active": "false"})) == [c["anjali"].id]
    since = (timezone.now() - timedelta(hours=30)).isoformat()
    assert set(ids(nurse_api.get(URL, {"admitted_after": since}))) == {
        c["anjali"].id,
        c["ravi"].id,
    }
    assert ids(nurse_api.get(URL, {"admitted_before": since})) == [c["priya"].id]
    assert ids(nurse_api.get(URL, {"discharged_after": since})) == [c["anjali"].id]
    assert ids(nurse_api.get(URL, {"ward": 999999})) == []


@pytest.mark.parametrize(
    "params",
    [{"sex": "X"}, {"monitoring_profile": "child"}, {"active": "maybe"}, {"ward": "a"},
     {"admitted_after": "yesterday"}, {"place": "1.5"}],
)  # fmt: skip
def test_bad_filters_are_400(nurse_api, census, params):
    error = assert_error(nurse_api.get(URL, params), 400, "validation_error")
    assert set(params) <= set(error["details"])


def test_search_on_name_mrn_and_bed(nurse_api, census):
    c = census
    assert ids(nurse_api.get(URL, {"search": "iyer"})) == [c["anjali"].id]
    assert ids(nurse_api.get(URL, {"search": "AD-1"})) == [c["ravi"].id]
    assert ids(nurse_api.get(URL, {"search": "L-01"})) == [c["priya"].id]
    assert ids(nurse_api.get(URL, {"search": "nobody"})) == []


def test_ordering_and_pagination(nurse_api, census):
    c = census
    by_name = ids(nurse_api.get(URL, {"ordering": "name"}))
    assert by_name == [c["anjali"].id, c["priya"].id, c["ravi"].id]
    newest = ids(nurse_api.get(URL, {"ordering": "-admitted_at"}))
    assert newest == [c["ravi"].id, c["anjali"].id, c["priya"].id]
    page = nurse_api.get(URL, {"page_size": 2, "ordering": "name"}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    rest = nurse_api.get(page["next"]).json()
    assert [p["id"] for p in rest["results"]] == [c["ravi"].id]


def test_list_with_devices_makes_a_fixed_number_of_queries(
    nurse_api, ward, django_assert_max_num_queries
):
    for _ in range(15):
        DeviceFactory(patient=PatientFactory(ward=ward))
    # user, their places, count, page (devices joined)
    with django_assert_max_num_queries(5):
        response = nurse_api.get(URL)
    results = response.json()["results"]
    assert len(results) == 15
    assert all(p["device"] is not None for p in results)
