from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.mail import body, reset_code
from config.net import free_port
from testing.assertions import assert_error
from testing.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login/"
REFRESH = "/api/auth/refresh/"
LOGOUT = "/api/auth/logout/"
ME = "/api/auth/me/"
CHANGE = "/api/auth/password/change/"
FORGOT = "/api/auth/password/forgot/"
RESET = "/api/auth/password/reset/"
NEW_PASSWORD = "Saffron-Monitor-77"


def session(email: str, password: str = DEFAULT_PASSWORD) -> tuple[APIClient, dict]:
    client = APIClient()
    response = client.post(LOGIN, {"email": email, "password": password})
    assert response.status_code == 200, response.content
    tokens = response.json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client, tokens


# --- Change ---------------------------------------------------------------------------------


def test_change_password(nurse):
    client, _ = session(nurse.email)
    response = client.post(CHANGE, {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 200, response.content
    assert response.json()["must_change_password"] is False
    nurse.refresh_from_db()
    assert nurse.check_password(NEW_PASSWORD)
    session(nurse.email, NEW_PASSWORD)


def test_change_password_with_a_wrong_old_password(nurse_api, nurse):
    response = nurse_api.post(CHANGE, {"old_password": "nope", "new_password": NEW_PASSWORD})
    assert_error(response, 400, "wrong_password", field="old_password")
    nurse.refresh_from_db()
    assert nurse.check_password(DEFAULT_PASSWORD)


@pytest.mark.parametrize("new", ["short", "password123", DEFAULT_PASSWORD])
def test_change_password_refuses_weak_or_unchanged_passwords(nurse_api, new):
    response = nurse_api.post(CHANGE, {"old_password": DEFAULT_PASSWORD, "new_password": new})
    error = assert_error(response, 400, "weak_password")
    assert error["details"]["new_password"]


def test_change_password_validates_the_payload(nurse_api):
    error = assert_error(nurse_api.post(CHANGE, {}), 400, "validation_error")
    assert set(error["details"]) == {"old_password", "new_password"}


def test_change_password_needs_a_token(api):
    assert_error(
        api.post(CHANGE, {"old_password": "a", "new_password": "b"}), 401, "not_authenticated"
    )


# --- The first-login gate -------------------------------------------------------------------


@pytest.fixture
def newcomer(place):
    return UserFactory(email="new@example.org", places=[place], must_change_password=True)


def test_must_change_password_blocks_other_endpoints(newcomer):
    client, tokens = session(newcomer.email)
    assert tokens["user"]["must_change_password"] is True
    paths = (("get", "/api/users/"), ("post", "/api/users/"), ("get", f"/api/users/{newcomer.pk}/"))
    for method, path in paths:
        error = assert_error(getattr(client, method)(path, {}), 403, "password_change_required")
        assert error["details"] is None


def test_must_change_password_still_allows_me_refresh_logout_and_change(newcomer):
    client, tokens = session(newcomer.email)
    assert client.get(ME).status_code == 200
    refreshed = client.post(REFRESH, {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200
    response = client.post(CHANGE, {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 200
    assert response.json()["must_change_password"] is False
    # The change ended every session; a new login reaches everything its role allows.
    assert_error(client.get(ME), 401, "token_not_valid")
    client, tokens = session(newcomer.email, NEW_PASSWORD)
    assert client.patch(ME, {"first_name": "Asha"}).status_code == 200
    assert_error(client.get("/api/users/"), 403, "forbidden")
    assert client.post(LOGOUT, {"refresh": tokens["refresh"]}).status_code == 205


def test_must_change_password_applies_to_other_apps_endpoints(newcomer, settings):
    """The gate lives in the default authentication class, so any DRF view gets it."""
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory
    from rest_framework.views import APIView

    class Elsewhere(APIView):
        def get(self, request):
            return Response({"ok": True})

    _, tokens = session(newcomer.email)
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    response = Elsewhere.as_view()(request)
    response.render()
    assert response.status_code == 403
    assert response.data["error"]["code"] == "password_change_required"

    newcomer.must_change_password = False
    newcomer.save(update_fields=["must_change_password"])
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert Elsewhere.as_view()(request).status_code == 200


# --- Forgot and reset -----------------------------------------------------------------------


@pytest.fixture
def mail(smtp_server, celery_eager, django_capture_on_commit_callbacks):
    """Tasks run eagerly and mail goes to the real SMTP test server. The test's transaction
    never commits, so ``forgot`` runs the on-commit callbacks of its request itself."""
    smtp_server.capture = django_capture_on_commit_callbacks
    return smtp_server


def forgot(api: APIClient, email: str, mail=None) -> None:
    if mail is None:
        response = api.post(FORGOT, {"email": email})
    else:
        with mail.capture(execute=True):
            response = api.post(FORGOT, {"email": email})
    assert response.status_code == 202, response.content
    assert not response.content


def test_forgot_and_reset_password(api, nurse, mail):
    old_client, old_tokens = session(nurse.email)
    forgot(api, "NURSE@example.org", mail)
    (message,) = mail.to(nurse.email)
    assert "reset" in message["Subject"].lower()
    assert "10 minutes" in body(message)
    code = reset_code(message)

    response = api.post(RESET, {"email": nurse.email, "code": code, "new_password": NEW_PASSWORD})
    assert response.status_code == 200, response.content
    assert response.json()["id"] == nurse.pk
    session(nurse.email, NEW_PASSWORD)
    assert_error(
        api.post(LOGIN, {"email": nurse.email, "password": DEFAULT_PASSWORD}),
        401,
        "invalid_credentials",
    )
    # The sessions from before the reset are over.
    assert_error(
        old_client.post(REFRESH, {"refresh": old_tokens["refresh"]}), 401, "token_not_valid"
    )
    # Single use.
    response = api.post(
        RESET, {"email": nurse.email, "code": code, "new_password": "Other-Pass-9981"}
    )
    assert_error(response, 400, "invalid_code")


def test_reset_clears_must_change_password(api, mail):
    user = UserFactory(email="fresh@example.org", must_change_password=True)
    forgot(api, user.email, mail)
    code = reset_code(mail.to(user.email)[0])
    api.post(RESET, {"email": user.email, "code": code, "new_password": NEW_PASSWORD})
    user.refresh_from_db()
    assert user.must_change_password is False


def test_forgot_does_not_reveal_unknown_or_inactive_addresses(api, mail):
    UserFactory(email="left@example.org", is_active=False)
    forgot(api, "nobody@example.org", mail)
    forgot(api, "left@example.org", mail)
    assert mail.messages == []


def test_forgot_validates_the_email(api):
    assert_error(api.post(FORGOT, {"email": "nope"}), 400, "validation_error", field="email")


def test_a_second_forgot_replaces_the_first_code(api, nurse, mail):
    forgot(api, nurse.email, mail)
    forgot(api, nurse.email, mail)
    first, second = (reset_code(m) for m in mail.to(nurse.email))
    if first != second:
        response = api.post(
            RESET, {"email": nurse.email, "code": first, "new_password": NEW_PASSWORD}
        )
        assert_error(response, 400, "invalid_code")
    response = api.post(RESET, {"email": nurse.email, "code": second, "new_password": NEW_PASSWORD})
    assert response.status_code == 200


def test_reset_wrong_code_five_times_voids_the_code(api, nurse, mail, settings):
    settings.OTP_MAX_ATTEMPTS = 5
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "password_reset": "100/min",
        },
    }
    forgot(api, nurse.email, mail)
    code = reset_code(mail.to(nurse.email)[0])
    bad = f"{(int(code) + 1) % 10**6:06d}"
    payload = {"email": nurse.email, "code": bad, "new_password": NEW_PASSWORD}
    for _ in range(4):
        assert_error(api.post(RESET, payload), 400, "invalid_code", field="code")
    assert_error(api.post(RESET, payload), 400, "too_many_attempts")
    payload["code"] = code
    assert_error(api.post(RESET, payload), 400, "too_many_attempts")
    nurse.refresh_from_db()
    assert nurse.check_password(DEFAULT_PASSWORD)


def test_reset_code_expires(api, nurse, mail, settings):
    settings.OTP_TTL_SECONDS = 1
    forgot(api, nurse.email, mail)
    code = reset_code(mail.to(nurse.email)[0])
    time.sleep(1.1)
    response = api.post(RESET, {"email": nurse.email, "code": code, "new_password": NEW_PASSWORD})
    assert_error(response, 400, "code_expired")


def test_reset_weak_password_keeps_the_code(api, nurse, mail):
    forgot(api, nurse.email, mail)
    code = reset_code(mail.to(nurse.email)[0])
    response = api.post(RESET, {"email": nurse.email, "code": code, "new_password": "123"})
    error = assert_error(response, 400, "weak_password")
    assert error["details"]["new_password"]
    response = api.post(RESET, {"email": nurse.email, "code": code, "new_password": NEW_PASSWORD})
    assert response.status_code == 200


def test_reset_for_an_unknown_address_is_an_invalid_code(api):
    payload = {"email": "nobody@example.org", "code": "123456", "new_password": NEW_PASSWORD}
    assert_error(api.post(RESET, payload), 400, "invalid_code")


def test_reset_without_a_requested_code_is_invalid(api, nurse):
    payload = {"email": nurse.email, "code": "123456", "new_password": NEW_PASSWORD}
    assert_error(api.post(RESET, payload), 400, "invalid_code")


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", ""])
def test_reset_code_must_be_six_digits(api, nurse, code):
    payload = {"email": nurse.email, "code": code, "new_password": NEW_PASSWORD}
    assert_error(api.post(RESET, payload), 400, "validation_error", field="code")


def test_reset_code_is_not_stored_in_plain_text(api, nurse, mail):
    from accounts.tests.test_otp import redis_dump

    forgot(api, nurse.email, mail)
    code = reset_code(mail.to(nurse.email)[0])
    assert b"otp:password_reset:" in redis_dump()
    assert code.encode() not in redis_dump()
    assert User.objects.filter(pk=nurse.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_forgot_mail_is_queued_when_the_request_commits(smtp_server, celery_eager):
    user = UserFactory(email="committed@example.org")
    response = APIClient().post(FORGOT, {"email": user.email})
    assert response.status_code == 202
    assert len(smtp_server.to(user.email)) == 1


def _drf_views(patterns):
    from django.urls import URLPattern, URLResolver

    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _drf_views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "cls"):
            yield str(pattern.pattern), pattern.callback.cls


def test_every_jwt_endpoint_uses_the_gated_authentication():
    """A view that names simplejwt's class directly would skip the first-login gate."""
    from django.urls import get_resolver
    from rest_framework_simplejwt.authentication import JWTAuthentication as PlainJWT

    from accounts.authentication import JWTAuthentication

    views = list(_drf_views(get_resolver().url_patterns))
    assert any(path.startswith("api/") for path, _ in views)
    for path, cls in views:
        for auth in cls.authentication_classes:
            if issubclass(auth, PlainJWT):
                assert issubclass(auth, JWTAuthentication), (path, cls, auth)


def test_must_change_password_blocks_posting_readings(newcomer, patient):
    client, _ = session(newcomer.email)
    response = client.post(
        "/api/records/",
        {
            "patient": patient.pk,
            "metric": "heart_rate",
            "bpm": 80,
            "recorded_at": "2026-01-01T00:00:00Z",
        },
    )
    assert_error(response, 403, "password_change_required")


def test_changing_the_password_voids_a_pending_reset_code(api, nurse, mail):
    forgot(api, nurse.email, mail)
    code = reset_code(mail.to(nurse.email)[0])
    client, _ = session(nurse.email)
    client.post(CHANGE, {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD})
    payload = {"email": nurse.email, "code": code, "new_password": "Other-Pass-9981"}
    assert_error(api.post(RESET, payload), 400, "invalid_code")


def test_a_password_reset_while_redis_is_away_is_a_503_not_a_500(api, nurse, settings):
    # One-time codes live in Redis: without it a reset cannot be checked; the caller is told
    # to retry later, in the error shape (logging in needs no Redis: test_throttling.py).
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }
    response = api.post(
        RESET, {"email": nurse.email, "code": "123456", "new_password": NEW_PASSWORD}
    )
    assert_error(response, 503, "unavailable")
