from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from clinical.models import Patient
from testing.factories import DeviceFactory, PatientFactory, WardFactory

pytestmark = pytest.mark.django_db


CHANGELIST = "/admin/clinical/patient/"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.org", "Str0ng-Passw0rd!"))
    return client


def form_data(ward, /, **overrides) -> dict:
    now = timezone.now() - timedelta(hours=1)
    return {
        "name": "Meera Pillai",
        "mrn": "ADM-1",
        "sex": "F",
        "monitoring_profile": "obstetric",
        "place": ward.place_id,
        "ward": ward.id,
        "bed": "L-3",
        "admitted_at_0": now.strftime("%Y-%m-%d"),
        "admitted_at_1": now.strftime("%H:%M:%S"),
        **overrides,
    }


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?q=JAN-",
        "?admission=active",
        "?admission=discharged",
        "?monitoring_profile__exact=obstetric",
        "?sex__exact=F",
        "?o=-8",
    ],
)
def test_patient_list_search_and_filters(staff_client, device, query):
    response = staff_client.get(f"{CHANGELIST}{query}")
    assert response.status_code == 200


def test_patient_list_shows_device_and_filters_admissions(staff_client, device):
    discharged = PatientFactory(ward=device.patient.ward)
    discharged.discharged_at = discharged.admitted_at + timedelta(minutes=1)
    discharged.save()
    response = staff_client.get(CHANGELIST)
    assert device.serial.encode() in response.content
    active = staff_client.get(f"{CHANGELIST}?admission=active").context["cl"].result_list
    assert [p.id for p in active] == [device.patient_id]


def test_patient_list_query_count_does_not_grow(staff_client, ward, django_assert_max_num_queries):
    for _ in range(20):
        DeviceFactory(patient=PatientFactory(ward=ward))
    with django_assert_max_num_queries(15):
        assert staff_client.get(CHANGELIST).status_code == 200


def test_admin_adds_a_patient(staff_client, ward):
    response = staff_client.post(f"{CHANGELIST}add/", form_data(ward))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Patient.objects.get(mrn="ADM-1").ward_id == ward.id


def test_admin_form_applies_the_api_rules(staff_client, ward, patient):
    foreign = WardFactory()
    response = staff_client.post(f"{CHANGELIST}add/", form_data(ward, ward=foreign.id))
    assert "ward" in response.context["adminform"].form.errors

    future = (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%d")
    response = staff_client.post(f"{CHANGELIST}add/", form_data(ward, date_of_birth=future))
    assert "date_of_birth" in response.context["adminform"].form.errors

    response = staff_client.post(f"{CHANGELIST}add/", form_data(ward, mrn=patient.mrn))
    assert response.context["adminform"].form.errors
    assert Patient.objects.count() == 1


def test_admin_change_page_of_patient_with_device(staff_client, device):
    response = staff_client.get(f"{CHANGELIST}{device.patient_id}/change/")
    assert response.status_code == 200
    assert device.serial.encode() in response.content


def test_discharge_in_the_admin_frees_the_device(staff_client, device):
    patient = device.patient
    admitted = timezone.now() - timedelta(days=1)
    discharged = timezone.now() - timedelta(hours=1)
    data = form_data(
        patient.ward,
        name=patient.name,
        mrn=patient.mrn,
        admitted_at_0=admitted.strftime("%Y-%m-%d"),
        admitted_at_1=admitted.strftime("%H:%M:%S"),
        discharged_at_0=discharged.strftime("%Y-%m-%d"),
        discharged_at_1=discharged.strftime("%H:%M:%S"),
    )
    response = staff_client.post(f"{CHANGELIST}{patient.id}/change/", data)
    assert response.status_code == 302
    patient.refresh_from_db()
    device.refresh_from_db()
    assert patient.discharged_at is not None
    assert device.patient_id is None
