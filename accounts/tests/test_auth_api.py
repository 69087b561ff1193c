from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role, User
from testing.assertions import USER_FIELDS, assert_error, assert_json
from testing.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/auth/register/"
LOGIN = "/api/auth/login/"
REFRESH = "/api/auth/refresh/"
LOGOUT = "/api/auth/logout/"
ME = "/api/auth/me/"


def login(client: APIClient, email: str, password: str = DEFAULT_PASSWORD):
    return client.post(LOGIN, {"email": email, "password": password})


# --- Register -------------------------------------------------------------------------------


def test_register_creates_a_nurse_without_places_or_tokens(api):
    response = api.post(
        REGISTER,
        {
            "email": "New.Nurse@Example.org",
            "password": "Monsoon-Ward-42",
            "first_name": "Meera",
            "last_name": "Iyer",
        },
    )
    body = assert_json(response, 201)
    assert set(body) == USER_FIELDS
    assert body["email"] == "new.nurse@example.org"
    assert body["role"] == "nurse"
    assert body["places"] == []
    assert body["must_change_password"] is False
    assert "access" not in body and "refresh" not in body and "password" not in body
    user = User.objects.get(pk=body["id"])
    assert user.check_password("Monsoon-Ward-42")
    assert user.role == Role.NURSE and not user.places.exists()


def test_register_ignores_a_requested_role(api):
    response = api.post(
        REGISTER, {"email": "sneaky@example.org", "password": "Monsoon-Ward-42", "role": "admin"}
    )
    assert response.status_code == 201
    assert response.json()["role"] == "nurse"
    assert not User.objects.get(email="sneaky@example.org").is_admin


def test_registered_user_can_log_in_but_sees_no_places(api):
    api.post(REGISTER, {"email": "meera@example.org", "password": "Monsoon-Ward-42"})
    response = login(api, "meera@example.org", "Monsoon-Ward-42")
    assert response.status_code == 200
    assert response.json()["user"]["places"] == []


def test_register_existing_email_is_a_conflict_whatever_the_case(api, nurse):
    response = api.post(REGISTER, {"email": "NURSE@example.org", "password": "Monsoon-Ward-42"})
    assert_error(response, 409, "email_taken", field="email")
    assert User.objects.filter(email__iexact="nurse@example.org").count() == 1


@pytest.mark.parametrize(
    "password",
    ["short1!", "password123", "12345678901", "registerme@example.org"],
    ids=["too-short", "common", "numeric", "like-email"],
)
def test_register_weak_password_is_refused_with_details(api, password):
    response = api.post(REGISTER, {"email": "registerme@example.org", "password": password})
    error = assert_error(response, 400, "weak_password")
    assert error["details"]["password"]
    assert not User.objects.filter(email="registerme@example.org").exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"password": "Monsoon-Ward-42"}, "email"),
        ({"email": "not-an-email", "password": "Monsoon-Ward-42"}, "email"),
        ({"email": "a@example.org"}, "password"),
        (
            {"email": "a@example.org", "password": "Monsoon-Ward-42", "first_name": "x" * 151},
            "first_name",
        ),
    ],
)
def test_register_invalid_payload_is_a_validation_error(api, payload, field):
    assert_error(api.post(REGISTER, payload), 400, "validation_error", field=field)


def test_register_malformed_json_is_a_parse_error(api):
    response = api.generic("POST", REGISTER, "{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")


# --- Login ----------------------------------------------------------------------------------


def test_login_returns_tokens_and_the_user(api, nurse, place):
    response = login(api, "Nurse@Example.org")
    body = assert_json(response, 200)
    assert set(body) == {"access", "refresh", "user"}
    assert body["user"]["id"] == nurse.pk
    assert body["user"]["email"] == "nurse@example.org"
    assert body["user"]["role"] == "nurse"
    assert body["user"]["places"] == [place.pk]
    assert body["user"]["must_change_password"] is False
    for key in ("first_name", "last_name"):
        assert key in body["user"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert api.get(ME).json()["id"] == nurse.pk
    nurse.refresh_from_db()
    assert nurse.last_login is not None


def test_login_wrong_password_is_401_invalid_credentials(api, nurse):
    response = login(api, nurse.email, "wrong-password")
    assert_error(response, 401, "invalid_credentials")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_login_unknown_email_gives_the_same_answer(api):
    error = assert_error(login(api, "nobody@example.org"), 401, "invalid_credentials")
    assert error["details"] is None


def test_inactive_user_cannot_log_in(api):
    user = UserFactory(email="gone@example.org", is_active=False)
    assert_error(login(api, user.email), 401, "account_disabled")
    # Without the password, nobody learns the account exists.
    assert_error(login(api, user.email, "guess"), 401, "invalid_credentials")


def test_login_missing_fields_is_a_validation_error(api):
    error = assert_error(api.post(LOGIN, {}), 400, "validation_error")
    assert set(error["details"]) == {"email", "password"}


def test_login_ignores_a_bad_authorization_header(api, nurse):
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert login(api, nurse.email).status_code == 200


# --- Refresh and logout ---------------------------------------------------------------------


def test_refresh_gives_a_new_access_and_rotates_the_refresh_token(api, nurse):
    first = login(api, nurse.email).json()["refresh"]
    response = api.post(REFRESH, {"refresh": first})
    body = assert_json(response, 200)
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != first
    # The old refresh token was blacklisted by the rotation; the new one works.
    assert_error(api.post(REFRESH, {"refresh": first}), 401, "token_not_valid")
    assert api.post(REFRESH, {"refresh": body["refresh"]}).status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert api.get(ME).status_code == 200


@pytest.mark.parametrize("token", ["garbage", ""], ids=["garbage", "empty"])
def test_refresh_with_a_bad_token_is_refused(api, token):
    response = api.post(REFRESH, {"refresh": token})
    if token:
        assert_error(response, 401, "token_not_valid")
    else:
        assert_error(response, 400, "validation_error")


def test_refresh_with_an_access_token_is_refused(api, nurse):
    access = login(api, nurse.email).json()["access"]
    assert_error(api.post(REFRESH, {"refresh": access}), 401, "token_not_valid")


def test_refresh_for_a_deactivated_user_is_refused(api, nurse):
    refresh = login(api, nurse.email).json()["refresh"]
    nurse.is_active = False
    nurse.save(update_fields=["is_active"])
    assert_error(api.post(REFRESH, {"refresh": refresh}), 401, "account_disabled")


def test_refresh_for_a_deleted_user_is_refused(api):
    user = UserFactory()
    refresh = login(api, user.email).json()["refresh"]
    user.delete()
    assert_error(api.post(REFRESH, {"refresh": refresh}), 401, "token_not_valid")


def test_logout_blacklists_the_refresh_token(api, nurse):
    refresh = login(api, nurse.email).json()["refresh"]
    response = api.post(LOGOUT, {"refresh": refresh})
    assert response.status_code == 205
    assert_error(api.post(REFRESH, {"refresh": refresh}), 401, "token_not_valid")
    # Logging out twice with the same token: it is no longer valid.
    assert_error(api.post(LOGOUT, {"refresh": refresh}), 401, "token_not_valid")


def test_logout_leaves_other_sessions_alone(api, nurse):
    phone = login(api, nurse.email).json()["refresh"]
    desk = login(api, nurse.email).json()["refresh"]
    assert api.post(LOGOUT, {"refresh": phone}).status_code == 205
    assert api.post(REFRESH, {"refresh": desk}).status_code == 200


def test_logout_with_a_bad_token(api):
    assert_error(api.post(LOGOUT, {"refresh": "garbage"}), 401, "token_not_valid")
    assert_error(api.post(LOGOUT, {}), 400, "validation_error")


# --- Me -------------------------------------------------------------------------------------


def test_me_returns_the_caller(doctor_api, doctor, place):
    body = doctor_api.get(ME).json()
    assert set(body) == USER_FIELDS
    assert body["id"] == doctor.pk
    assert body["role"] == "doctor"
    assert body["places"] == [place.pk]


def test_me_needs_a_token(api):
    assert_error(api.get(ME), 401, "not_authenticated")
    api.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    assert_error(api.get(ME), 401, "token_not_valid")


def test_me_patch_changes_only_the_names(nurse_api, nurse):
    response = nurse_api.patch(
        ME, {"first_name": " Lakshmi ", "last_name": "Nair", "role": "admin", "email": "x@y.org"}
    )
    assert response.status_code == 200
    nurse.refresh_from_db()
    assert (nurse.first_name, nurse.last_name) == ("Lakshmi", "Nair")
    assert nurse.role == Role.NURSE and nurse.email == "nurse@example.org"


def test_me_patch_validates(nurse_api):
    assert_error(
        nurse_api.patch(ME, {"first_name": "x" * 151}), 400, "validation_error", field="first_name"
    )


def test_deactivated_user_access_token_stops_working(nurse_api, nurse):
    nurse.is_active = False
    nurse.save(update_fields=["is_active"])
    assert_error(nurse_api.get(ME), 401, "user_inactive")
