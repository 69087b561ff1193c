"""A place may require a second factor of its doctors (``mfa_required_for_doctors``): its
doctors and administrators then get no token by password alone, its nurses and other places'
doctors are not asked; switching it on ends the password sessions of the members it now
concerns; a doctor added to such a place gets no new access token from an old session."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Role, User
from audit.models import AuditRecord
from testing.assertions import assert_error
from testing.auth_cache import auth_cache_clear
from testing.factories import DEFAULT_PASSWORD, PlaceFactory, UserFactory, otp_device_for, totp_code

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login/"


@pytest.fixture(autouse=True)
def no_role_requires_it(settings):
    settings.MFA_REQUIRED_ROLES = []  # only the place's setting asks for it here
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    auth_cache_clear()  # the login throttle's counters live in Redis
    yield
    auth_cache_clear()


def login(user: User, **extra: str):
    return APIClient().post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD, **extra})


@pytest.fixture
def strict(place):
    place.mfa_required_for_doctors = True
    place.save(update_fields=["mfa_required_for_doctors"])
    return place


def test_the_doctors_of_a_strict_place_must_enrol_its_nurses_need_not(strict, doctor, nurse):
    admin = UserFactory(role=Role.ADMIN, places=[strict])
    for person in (doctor, admin):
        response = login(person)
        assert response.status_code == 403, person.role
        assert response.json()["error"]["code"] == "otp_enrollment_required"
    assert login(nurse).status_code == 200
    elsewhere = UserFactory(role=Role.DOCTOR, places=[PlaceFactory()])
    assert login(elsewhere).status_code == 200


def test_a_doctor_with_a_second_factor_signs_in_with_a_code(strict, doctor):
    device = otp_device_for(doctor)
    assert_error(login(doctor), 401, "otp_required")
    assert login(doctor, otp=totp_code(device)).status_code == 200


def test_switching_it_on_over_rest_ends_the_password_sessions_it_concerns(
    place, doctor, nurse, admin_api
):
    enrolled = UserFactory(role=Role.DOCTOR, places=[place], email="enrolled@example.org")
    device = otp_device_for(enrolled)
    doctor_tokens = login(doctor).json()
    nurse_tokens = login(nurse).json()
    enrolled_tokens = login(enrolled, otp=totp_code(device)).json()

    response = admin_api.patch(
        f"/api/places/{place.id}/", {"mfa_required_for_doctors": True}, format="json"
    )
    assert response.status_code == 200 and response.json()["mfa_required_for_doctors"] is True

    def refresh(tokens):
        return APIClient().post("/api/auth/refresh/", {"refresh": tokens["refresh"]})

    def me(tokens):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        return client.get("/api/auth/me/")

    assert refresh(doctor_tokens).status_code == 401
    assert me(doctor_tokens).status_code == 401
    assert refresh(nurse_tokens).status_code == 200
    assert refresh(enrolled_tokens).status_code == 200  # already has a second factor
    record = AuditRecord.objects.get(resource_type="place", action="update")
    assert record.detail is not None
    assert record.detail["fields"] == ["mfa_required_for_doctors"]


def test_a_doctor_added_to_a_strict_place_gets_no_new_token_from_an_old_session(strict):
    doctor = UserFactory(role=Role.DOCTOR, places=[PlaceFactory()])
    tokens = login(doctor).json()
    doctor.places.add(strict)
    assert_error(
        APIClient().post("/api/auth/refresh/", {"refresh": tokens["refresh"]}),
        401,
        "otp_enrollment_required",
    )


def test_the_admin_site_offers_it_and_ends_the_sessions_too(place, doctor):
    tokens = login(doctor).json()
    staff = Client()
    staff.force_login(User.objects.create_superuser("root@example.org", "Str0ng-Passw0rd!"))
    response = staff.post(
        f"/admin/clinical/place/{place.id}/change/",
        {
            "name": place.name,
            "kind": place.kind,
            "address": "",
            "is_active": "on",
            "webhook_url": "",
            "mfa_required_for_doctors": "on",
            "wards-TOTAL_FORMS": "0",
            "wards-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    place.refresh_from_db()
    assert place.mfa_required_for_doctors is True
    assert APIClient().post("/api/auth/refresh/", {"refresh": tokens["refresh"]}).status_code == 401
