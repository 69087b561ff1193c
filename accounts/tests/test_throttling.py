"""Throttles count in the real Redis cache the test run uses."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from config.net import free_port
from testing.assertions import assert_error
from testing.auth_cache import cache_redis

pytestmark = pytest.mark.django_db

PASSWORD = "Str0ng-Passw0rd!"  # the nurse fixture's


def test_login_is_throttled_at_the_configured_rate(api, nurse):
    # The shipped rate (10/min): ten tries, wrong or right, then 429. Each names another
    # account, so the per-account lockout (test_lockout.py) does not come first.
    for n in range(10):
        response = api.post("/api/auth/login/", {"email": f"n{n}@example.org", "password": "x"})
        assert response.status_code == 401
    response = api.post("/api/auth/login/", {"email": nurse.email, "password": "Str0ng-Passw0rd!"})
    error = assert_error(response, 429, "throttled")
    assert error["details"] is None
    assert int(response["Retry-After"]) > 0


def test_login_throttle_is_per_client(api, nurse, rates):
    rates(login="2/min")
    for _ in range(2):
        api.post("/api/auth/login/", {"email": nurse.email, "password": "wrong"})
    assert_error(api.post("/api/auth/login/", {}), 429, "throttled")
    other = APIClient(REMOTE_ADDR="10.0.0.9")
    assert other.post("/api/auth/login/", {}).status_code == 400


def test_register_is_throttled(api, rates):
    rates(register="2/min")
    for n in range(2):
        response = api.post(
            "/api/auth/register/", {"email": f"r{n}@example.org", "password": "Monsoon-Ward-42"}
        )
        assert response.status_code == 201
    response = api.post(
        "/api/auth/register/", {"email": "r9@example.org", "password": "Monsoon-Ward-42"}
    )
    assert_error(response, 429, "throttled")


def test_forgot_and_reset_are_throttled_separately(api, rates):
    rates(password_reset="2/min")
    for _ in range(2):
        assert api.post("/api/auth/password/forgot/", {"email": "a@example.org"}).status_code == 202
    assert_error(
        api.post("/api/auth/password/forgot/", {"email": "a@example.org"}), 429, "throttled"
    )
    payload = {"email": "a@example.org", "code": "123456", "new_password": "Monsoon-Ward-42"}
    for _ in range(2):
        assert_error(api.post("/api/auth/password/reset/", payload), 400, "invalid_code")
    assert_error(api.post("/api/auth/password/reset/", payload), 429, "throttled")


def test_throttle_counters_live_in_redis(api, rates):
    rates(login="5/min")
    api.post("/api/auth/login/", {})
    client = cache_redis()
    assert any(b"throttle_login" in key for key in client.scan_iter())


def test_test_cleanup_removes_only_throttle_and_code_keys(api):
    from django.core.cache import cache

    from accounts import otp
    from testing.auth_cache import auth_cache_clear

    cache.set("unrelated", 1, 60)
    otp.otp_issue(purpose="password_reset", user_id=1)
    api.post("/api/auth/login/", {})
    assert auth_cache_clear() >= 3
    assert cache.get("unrelated") == 1
    assert cache.get("otp:password_reset:1") is None
    cache.delete("unrelated")


def test_login_works_while_the_throttle_cache_is_unreachable(api, nurse, settings, rates):
    # Redis away: the throttle counters cannot be kept, and staff must still log in (no 500).
    rates(login="1/min")
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }
    for _ in range(2):  # above the rate: not throttled, since nothing can be counted
        response = api.post("/api/auth/login/", {"email": nurse.email, "password": PASSWORD})
        assert response.status_code == 200, response.content
        assert response.json()["access"]
    # Guessing is still bounded: the lockout counts failures in the database.
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert_error(
            api.post("/api/auth/login/", {"email": nurse.email, "password": "wrong"}),
            401,
            "invalid_credentials",
        )
    response = api.post("/api/auth/login/", {"email": nurse.email, "password": "wrong"})
    assert_error(response, 429, "throttled")
    response = api.post("/api/auth/login/", {"email": nurse.email, "password": PASSWORD})
    assert_error(response, 429, "throttled")
