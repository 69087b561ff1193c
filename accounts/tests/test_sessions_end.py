"""Sessions that end when they should: password change and reset, log out everywhere, a role
or place change, and a single logout end the tokens they should (REST 401)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts import otp
from accounts.emails import PASSWORD_RESET
from audit.models import AuditRecord
from testing.assertions import assert_error
from testing.factories import DEFAULT_PASSWORD, PlaceFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Saffron-Monitor-77"


def session(user, password=DEFAULT_PASSWORD):
    client = APIClient()
    response = client.post("/api/auth/login/", {"email": user.email, "password": password})
    assert response.status_code == 200, response.content
    tokens = response.json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client, tokens


def assert_ended(client, tokens):
    assert_error(client.get("/api/auth/me/"), 401, "token_not_valid")
    assert_error(
        APIClient().post("/api/auth/refresh/", {"refresh": tokens["refresh"]}),
        401,
        "token_not_valid",
    )


def test_password_change_ends_every_session(nurse):
    first, first_tokens = session(nurse)
    second, second_tokens = session(nurse)
    response = first.post(
        "/api/auth/password/change/",
        {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert_ended(first, first_tokens)
    assert_ended(second, second_tokens)
    fresh, _ = session(nurse, NEW_PASSWORD)
    assert fresh.get("/api/auth/me/").status_code == 200
    assert AuditRecord.objects.filter(action="password_change", actor_id=nurse.id).count() == 1


def test_password_reset_ends_every_session(nurse):
    client, tokens = session(nurse)
    code = otp.otp_issue(purpose=PASSWORD_RESET, user_id=nurse.pk)
    response = APIClient().post(
        "/api/auth/password/reset/",
        {"email": nurse.email, "code": code, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 200, response.content
    assert_ended(client, tokens)
    assert AuditRecord.objects.filter(action="password_reset", actor_id=nurse.id).count() == 1


def test_logout_all_ends_every_session(nurse):
    first, first_tokens = session(nurse)
    second, second_tokens = session(nurse)
    assert first.post("/api/auth/logout-all/").status_code == 205
    assert_ended(first, first_tokens)
    assert_ended(second, second_tokens)
    assert session(nurse)[0].get("/api/auth/me/").status_code == 200
    assert AuditRecord.objects.filter(action="logout_all", actor_id=nurse.id).count() == 1


def test_logout_ends_its_own_access_token_and_no_other_session(nurse):
    client, tokens = session(nurse)
    other, _ = session(nurse)
    assert APIClient().post("/api/auth/logout/", {"refresh": tokens["refresh"]}).status_code == 205
    assert_ended(client, tokens)
    assert other.get("/api/auth/me/").status_code == 200
    assert AuditRecord.objects.filter(action="logout", actor_id=nurse.id).count() == 1


def test_a_refreshed_access_token_belongs_to_its_session(nurse):
    _, tokens = session(nurse)
    refreshed = APIClient().post("/api/auth/refresh/", {"refresh": tokens["refresh"]}).json()
    assert (
        APIClient().post("/api/auth/logout/", {"refresh": refreshed["refresh"]}).status_code == 205
    )
    later = APIClient()
    later.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed['access']}")
    assert_error(later.get("/api/auth/me/"), 401, "token_not_valid")


@pytest.mark.parametrize("change", ["role", "place_removed"])
def test_access_removed_ends_every_session(admin_api, place, change):
    other_place = PlaceFactory()
    doctor = UserFactory(role="doctor", places=[place, other_place])
    client, tokens = session(doctor)
    body = {"role": "nurse"} if change == "role" else {"places": [place.id]}
    assert admin_api.patch(f"/api/users/{doctor.id}/", body).status_code == 200
    assert_ended(client, tokens)


def test_a_place_added_keeps_the_session(admin_api, place):
    doctor = UserFactory(role="doctor", places=[place])
    client, _ = session(doctor)
    body = {"places": [place.id, PlaceFactory().id]}
    assert admin_api.patch(f"/api/users/{doctor.id}/", body).status_code == 200
    assert client.get("/api/auth/me/").status_code == 200
