"""Names, wards, beds and MRNs are one line of text at every entry point: a control character
(a carriage return, a line feed, a tab, an escape) is refused with the contract's
``validation_error`` by the REST API, by the admin's forms (the model fields' validator), and
by the shared check the HL7 ADT feed uses."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.models import User
from clinical.models import Patient, Place, Ward
from clinical.tests.test_patients_admin import form_data
from common.validators import control_characters_find, control_characters_replace
from testing.assertions import assert_error
from testing.factories import PatientFactory, patient_raw

pytestmark = pytest.mark.django_db

HOSTILE = ["Ann\rSmith", "Ann\nMSH|^~\\&", "Ann\r\nBcc: x@example.org", "Tab\there", "E\x1b[2J"]


@pytest.mark.parametrize("field", ["name", "mrn", "bed"])
@pytest.mark.parametrize("value", HOSTILE)
def test_rest_refuses_a_patient_field_with_a_control_character(admin_api, ward, field, value):
    response = admin_api.post("/api/patients/", patient_raw(ward, **{field: value}), format="json")
    assert_error(response, 400, "validation_error", field=field)
    assert not Patient.objects.filter(place=ward.place).exists()


def test_rest_refuses_a_change_to_a_name_with_a_line_break(admin_api, patient):
    response = admin_api.patch(
        f"/api/patients/{patient.id}/", {"name": "Ann\nSmith"}, format="json"
    )
    assert_error(response, 400, "validation_error")
    patient.refresh_from_db()
    assert "\n" not in patient.name


def test_rest_refuses_ward_and_place_names_with_control_characters(admin_api, place):
    response = admin_api.post("/api/wards/", {"place": place.id, "name": "A&E\r"}, format="json")
    # A trailing line break is trimmed as whitespace; one inside the name is refused.
    assert response.status_code == 201, response.content
    assert Ward.objects.get(pk=response.json()["id"]).name == "A&E"
    response = admin_api.post("/api/wards/", {"place": place.id, "name": "A&E\rX"}, format="json")
    assert "name" in assert_error(response, 400, "validation_error")["details"]
    response = admin_api.post("/api/places/", {"name": "St\nMary"}, format="json")
    assert "name" in assert_error(response, 400, "validation_error")["details"]


def test_names_with_hl7_and_json_specials_are_fine(admin_api, ward):
    payload = patient_raw(ward, name='O\'Brien "Jr" & Co ^|~\\', mrn="12&34", bed="A&E-1")
    response = admin_api.post("/api/patients/", payload, format="json")
    assert response.status_code == 201, response.content
    assert Patient.objects.get(pk=response.json()["id"]).mrn == "12&34"


def test_the_admin_form_refuses_a_name_with_a_line_break(ward):
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.org", "Str0ng-Passw0rd!"))
    data = form_data(ward, name="Meera\r\nPillai")
    response = client.post("/admin/clinical/patient/add/", data)
    assert response.status_code == 200  # the form again, with its error
    assert "Must not contain control characters" in response.content.decode()
    assert not Patient.objects.filter(mrn="ADM-1").exists()


def test_the_model_validators_are_what_every_entry_point_shares(ward):
    patient = PatientFactory.build(ward=ward, place=ward.place, name="Ann\nSmith")
    with pytest.raises(ValidationError) as refused:
        patient.full_clean()
    assert refused.value.error_dict["name"][0].code == "control_characters"
    with pytest.raises(ValidationError):
        Place(name="X\x00").full_clean(exclude=["webhook_secret"])
    assert control_characters_find("Ann\u2028Smith") == "\u2028"
    assert control_characters_find("Zoë Ñúñez-O'Brien") is None
    assert control_characters_replace("Ann\r\nSmith") == "Ann  Smith"
