"""Throttles and lockouts a client cannot reset: forged X-Forwarded-For, new reset codes, the
admin login. Counters live in the real Redis (throttles) and the test database (lockouts)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from accounts import otp
from accounts.emails import PASSWORD_RESET
from testing.assertions import assert_error
from testing.auth_cache import cache_redis
from testing.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login/"
RESET = "/api/auth/password/reset/"
ADMIN_LOGIN = "/admin/login/"
NEW_PASSWORD = "Saffron-Monitor-77"


def forged(n: int) -> dict[str, Any]:
    return {"HTTP_X_FORWARDED_FOR": f"203.0.113.{n}", "HTTP_X_FORWARDED_PROTO": "https"}


def test_a_rotating_forwarded_for_does_not_escape_the_login_throttle(api, rates):
    rates(login="5/min")
    for n in range(5):
        wrong = {"email": f"n{n}@example.org", "password": "x"}
        assert api.post(LOGIN, wrong, **forged(n)).status_code == 401
    response = api.post(LOGIN, {"email": "n9@example.org", "password": "x"}, **forged(99))
    assert_error(response, 429, "throttled")


def test_behind_a_trusted_proxy_each_client_is_counted_apart(settings, rates):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    rates(login="2/min")
    balancer = APIClient(REMOTE_ADDR="10.1.2.3")
    for _ in range(2):
        balancer.post(LOGIN, {}, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert_error(balancer.post(LOGIN, {}, HTTP_X_FORWARDED_FOR="198.51.100.7"), 429, "throttled")
    # A client that prepends its own X-Forwarded-For is still the address the balancer saw.
    forged_left = "192.0.2.1, 198.51.100.7"
    assert_error(balancer.post(LOGIN, {}, HTTP_X_FORWARDED_FOR=forged_left), 429, "throttled")
    # Another client behind the same balancer has its own count; so does a chain of proxies.
    assert balancer.post(LOGIN, {}, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 400
    chain = "198.51.100.9, 10.9.9.9"
    assert balancer.post(LOGIN, {}, HTTP_X_FORWARDED_FOR=chain).status_code == 400


def test_a_locked_account_stays_locked_whatever_the_forwarded_for(api, nurse):
    wrong = {"email": nurse.email, "password": "wrong"}
    statuses = [api.post(LOGIN, wrong, **forged(n)).status_code for n in range(5)]
    assert statuses == [401] * 4 + [429]
    response = api.post(LOGIN, {"email": nurse.email, "password": DEFAULT_PASSWORD}, **forged(42))
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) == 15 * 60
    # Locked per account and client: the nurse at another workstation still logs in, so an
    # attacker cannot lock a nurse out of the ward.
    elsewhere = APIClient(REMOTE_ADDR="10.0.0.9")
    response = elsewhere.post(LOGIN, {"email": nurse.email.upper(), "password": DEFAULT_PASSWORD})
    assert response.status_code == 200, response.content


def test_a_success_before_the_limit_clears_the_failures(api, nurse):
    for _ in range(4):
        api.post(LOGIN, {"email": nurse.email, "password": "wrong"})
    assert api.post(LOGIN, {"email": nurse.email, "password": DEFAULT_PASSWORD}).status_code == 200
    for _ in range(4):
        assert api.post(LOGIN, {"email": nurse.email, "password": "wrong"}).status_code == 401


def test_the_admin_login_is_locked_out_too(admin_user):
    browser = Client()
    statuses = [
        browser.post(
            ADMIN_LOGIN, {"username": admin_user.email, "password": "wrong"}, **forged(n)
        ).status_code
        for n in range(5)
    ]
    assert statuses == [200] * 4 + [429]  # the form again four times, then the lockout
    response = browser.post(
        ADMIN_LOGIN, {"username": admin_user.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 429 and "_auth_user_id" not in browser.session
    assert response["Retry-After"] == str(15 * 60)


def test_api_and_admin_failures_add_up(api, admin_user):
    for _ in range(3):
        assert api.post(LOGIN, {"email": admin_user.email, "password": "wrong"}).status_code == 401
    browser = Client()
    statuses = [
        browser.post(
            ADMIN_LOGIN, {"username": admin_user.email.upper(), "password": "wrong"}
        ).status_code
        for _ in range(2)
    ]
    assert statuses == [200, 429]
    response = api.post(LOGIN, {"email": admin_user.email, "password": DEFAULT_PASSWORD})
    assert_error(response, 429, "throttled")


def test_a_new_reset_code_does_not_reset_the_accounts_attempts(api, nurse, rates, settings):
    rates(password_reset="1000/min")
    settings.OTP_MAX_ATTEMPTS = 5
    settings.OTP_ACCOUNT_MAX_ATTEMPTS = 10
    wrong = {"email": nurse.email, "code": "000000", "new_password": NEW_PASSWORD}
    for _ in range(2):
        code = otp.otp_issue(purpose=PASSWORD_RESET, user_id=nurse.pk)
        wrong["code"] = f"{(int(code) + 1) % 10**6:06d}"
        for _ in range(4):  # under the per-code limit
            assert_error(api.post(RESET, wrong), 400, "invalid_code")
    code = otp.otp_issue(purpose=PASSWORD_RESET, user_id=nurse.pk)
    wrong["code"] = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(2):
        assert_error(api.post(RESET, wrong), 400, "invalid_code")
    # Ten attempts in the window: even the right code of a fresh request is refused now.
    code = otp.otp_issue(purpose=PASSWORD_RESET, user_id=nurse.pk)
    right = {"email": nurse.email, "code": code, "new_password": NEW_PASSWORD}
    error = assert_error(api.post(RESET, right), 400, "too_many_attempts")
    assert "account" in error["message"]
    nurse.refresh_from_db()
    assert nurse.check_password(DEFAULT_PASSWORD)


def test_the_reset_window_ends(api, nurse, rates, settings):
    rates(password_reset="1000/min")
    settings.OTP_ACCOUNT_MAX_ATTEMPTS = 1
    settings.OTP_ACCOUNT_WINDOW_SECONDS = 1
    code = otp.otp_issue(purpose=PASSWORD_RESET, user_id=nurse.pk)
    wrong = {"email": nurse.email, "code": f"{(int(code) + 1) % 10**6:06d}"}
    assert_error(api.post(RESET, {**wrong, "new_password": NEW_PASSWORD}), 400, "invalid_code")
    right = {"email": nurse.email, "code": code, "new_password": NEW_PASSWORD}
    assert_error(api.post(RESET, right), 400, "too_many_attempts")
    # The window is a Redis TTL: end it the way time would, then the right code works.
    cache_redis(write=True).delete(cache.make_key(f"otp:{PASSWORD_RESET}:{nurse.pk}:window"))
    assert api.post(RESET, right).status_code == 200
