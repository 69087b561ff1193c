"""Changes made in the Django admin are audited like REST ones: per saved change exactly one
record (channel ``admin``) with the right actor, action, resource, patient and changed fields,
in the admin's own transaction; a form refused records nothing. A role or place change made
there ends the person's sessions as it does through REST."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from alerts.models import AlarmLimit
from audit.models import AuditRecord
from clinical.models import Patient, Ward
from clinical.tests.test_patients_admin import form_data
from testing.factories import DEFAULT_PASSWORD, PlaceFactory, WardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root() -> User:
    return User.objects.create_superuser("root@example.org", "Str0ng-Passw0rd!")


@pytest.fixture
def staff(root) -> Client:
    client = Client()
    client.force_login(root)
    return client


def admin_records() -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(channel="admin").order_by("id"))


# One admission time for every form of a test (to the second, as the form sends it).
ADMITTED = timezone.localtime(timezone.now() - timedelta(hours=1))


def patient_form(ward: Ward, /, **overrides: object) -> dict[str, object]:
    """The patient admin form (``form_data``) as a browser sends it: the admission time has
    a callable default, so the form compares it with its hidden initial value too."""
    day, time = ADMITTED.strftime("%Y-%m-%d"), ADMITTED.strftime("%H:%M:%S")
    admitted = {"admitted_at_0": day, "admitted_at_1": time}
    initial = {"initial-admitted_at_0": day, "initial-admitted_at_1": time}
    return form_data(ward, **admitted, **initial, **overrides)


def test_a_patient_added_then_moved_in_the_admin_is_one_record_each(staff, root, ward):
    response = staff.post("/admin/clinical/patient/add/", patient_form(ward))
    assert response.status_code == 302, response.content[:2000]
    patient = Patient.objects.get(mrn="ADM-1")
    other = WardFactory(place=ward.place)
    response = staff.post(
        f"/admin/clinical/patient/{patient.id}/change/",
        patient_form(ward, ward=other.id, bed="9"),
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 302, response.content[:2000]
    created, moved = admin_records()
    assert (created.action, created.resource_type, created.resource_id, created.patient_id) == (
        "create",
        "patient",
        str(patient.id),
        patient.id,
    )
    assert (moved.action, moved.patient_id, moved.outcome) == ("update", patient.id, "success")
    assert (moved.actor_type, moved.actor_id, moved.actor_role) == ("user", root.id, "admin")
    assert moved.address == "10.1.2.3"
    assert moved.detail == {"fields": ["bed", "ward"]}
    patient.refresh_from_db()
    assert (patient.ward_id, patient.bed) == (other.id, "9")


def test_a_refused_form_records_nothing(staff, ward):
    response = staff.post("/admin/clinical/patient/add/", patient_form(ward, name=""))
    assert response.status_code == 200  # the form again, with its errors
    assert admin_records() == []


def test_a_role_and_place_change_is_recorded_with_its_values_and_ends_sessions(staff, nurse):
    tokens = (
        APIClient()
        .post("/api/auth/login/", {"email": nurse.email, "password": DEFAULT_PASSWORD})
        .json()
    )
    elsewhere = PlaceFactory()
    response = staff.post(
        f"/admin/accounts/user/{nurse.id}/change/",
        {
            "email": nurse.email,
            "first_name": nurse.first_name,
            "last_name": nurse.last_name,
            "role": "doctor",
            "places": [elsewhere.id],
            "is_active": "on",
            "date_joined_0": nurse.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": nurse.date_joined.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, response.content[:3000]
    (record,) = admin_records()
    assert (record.action, record.resource_type, record.resource_id) == (
        "update",
        "user",
        str(nurse.id),
    )
    assert record.detail is not None
    assert record.detail["role"] == "doctor" and record.detail["places"] == [elsewhere.id]
    assert {"role", "places"} <= set(record.detail["fields"])
    # Access changed under them: the old session is over.
    assert APIClient().post("/api/auth/refresh/", {"refresh": tokens["refresh"]}).status_code == 401


def test_an_alarm_limit_added_names_its_patient(staff, patient):
    response = staff.post(
        "/admin/alerts/alarmlimit/add/",
        {
            "patient": patient.id,
            "metric": "heart_rate",
            "brady_high": 40,
            "tachy_high": 150,
            "hold_high_seconds": 10,
            "hold_medium_seconds": 20,
            "hold_low_seconds": 30,
            "updated_at_0": ADMITTED.strftime("%Y-%m-%d"),
            "updated_at_1": ADMITTED.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, response.content[:3000]
    limit = AlarmLimit.objects.get(patient=patient)
    (record,) = admin_records()
    assert (record.action, record.resource_type, record.resource_id, record.patient_id) == (
        "create",
        "alarm_limits",
        str(limit.id),
        patient.id,
    )


def test_admin_actions_and_deletions_are_recorded(staff, device, place):
    response = staff.post(
        "/admin/clinical/device/", {"action": "rotate_tokens", "_selected_action": [device.id]}
    )
    assert response.status_code == 302
    spare = WardFactory(place=place)
    response = staff.post(f"/admin/clinical/ward/{spare.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    rotated, deleted = admin_records()
    assert (rotated.action, rotated.resource_type, rotated.patient_id) == (
        "update",
        "device",
        device.patient_id,
    )
    assert rotated.detail == {"operation": "Issued a new token."}
    assert (deleted.action, deleted.resource_type, deleted.resource_id) == (
        "delete",
        "ward",
        str(spare.id),
    )


def test_every_registered_admin_records_its_changes():
    from django.contrib import admin

    from audit.admin_changes import AuditedAdmin

    unaudited = [
        model.__name__
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdmin)
    ]
    assert unaudited == []
