"""The second factor: an admin cannot obtain a token by password alone; TOTP or a recovery code
opens the session; a wrong code counts towards the lockout; enrolment and reset are audited."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts.models import Role
from audit.models import AuditRecord
from testing.assertions import assert_error
from testing.clients import bearer_client
from testing.factories import DEFAULT_PASSWORD, UserFactory, otp_device_for, totp_code

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login/"
CONFIRM = "/api/auth/otp/confirm/"


@pytest.fixture(autouse=True)
def admins_need_a_second_factor(settings):
    settings.MFA_REQUIRED_ROLES = ["admin"]
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


@pytest.fixture
def admin():
    return UserFactory(role=Role.ADMIN, email="boss@example.org")


def login(**body):
    return APIClient().post(
        LOGIN, {"email": "boss@example.org", "password": DEFAULT_PASSWORD, **body}
    )


def test_admin_without_a_second_factor_gets_an_enrolment_not_a_token(admin):
    response = login()
    assert response.status_code == 403
    assert set(response.json()) == {"error", "enrollment"}
    body = response.json()["error"]
    assert body["code"] == "otp_enrollment_required"
    enrollment = response.json()["enrollment"]
    assert enrollment["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={enrollment['secret']}" in enrollment["otpauth_uri"]
    assert body["message"]
    device = TOTPDevice.objects.get(user=admin)
    assert device.confirmed is False
    # The first code of the authenticator confirms it: tokens and recovery codes.
    assert_error(
        APIClient().post(CONFIRM, {"token": enrollment["token"], "otp": "000000"}),
        401,
        "otp_invalid",
    )
    confirmed = APIClient().post(CONFIRM, {"token": enrollment["token"], "otp": totp_code(device)})
    assert confirmed.status_code == 200, confirmed.content
    tokens = confirmed.json()
    assert tokens["access"] and tokens["refresh"] and tokens["user"]["id"] == admin.id
    assert len(tokens["recovery_codes"]) == 10
    assert AuditRecord.objects.filter(action="otp_enrolled", actor_id=admin.id).count() == 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get("/api/auth/me/").status_code == 200


def test_a_forged_or_reused_enrolment_is_refused(admin):
    token = login().json()["enrollment"]["token"]
    assert_error(
        APIClient().post(CONFIRM, {"token": token + "x", "otp": "123456"}),
        400,
        "enrollment_invalid",
    )
    device = TOTPDevice.objects.get(user=admin)
    assert APIClient().post(CONFIRM, {"token": token, "otp": totp_code(device)}).status_code == 200
    again = APIClient().post(CONFIRM, {"token": token, "otp": totp_code(device)})
    assert_error(again, 400, "enrollment_invalid")


def test_totp_and_recovery_codes_open_the_session(admin):
    device = otp_device_for(admin)
    assert_error(login(), 401, "otp_required")
    response = login(otp=totp_code(device))
    assert response.status_code == 200, response.content
    assert response.json()["access"]
    from accounts.mfa import mfa_recovery_codes_issue

    codes = mfa_recovery_codes_issue(user=admin)
    assert login(otp=codes[0]).status_code == 200
    # A recovery code works once.
    assert_error(login(otp=codes[0]), 401, "otp_invalid")
    assert login(otp=codes[1].upper()).status_code == 200


def test_wrong_codes_count_towards_the_lockout(admin, settings):
    settings.AXES_FAILURE_LIMIT = 3
    device = otp_device_for(admin)
    assert_error(login(otp="000000"), 401, "otp_invalid")
    assert_error(login(otp="111111"), 401, "otp_invalid")
    assert login(otp="222222").status_code == 429  # the third failure locks the account out
    # Locked out: even the right password and code are refused.
    assert login(otp=totp_code(device)).status_code == 429
    actions = list(AuditRecord.objects.order_by("id").values_list("action", flat=True))
    assert actions.count("login_failed") >= 3
    assert "lockout" in actions


def test_other_roles_need_none_but_may_enrol(place):
    nurse = UserFactory(role=Role.NURSE, email="n@example.org", places=[place])
    response = APIClient().post(LOGIN, {"email": nurse.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    enrollment = bearer_client(nurse).post("/api/auth/otp/enroll/").json()
    device = TOTPDevice.objects.get(user=nurse)
    assert (
        APIClient()
        .post(CONFIRM, {"token": enrollment["token"], "otp": totp_code(device)})
        .status_code
        == 200
    )
    again = APIClient().post(LOGIN, {"email": nurse.email, "password": DEFAULT_PASSWORD})
    assert_error(again, 401, "otp_required")


def test_another_admin_resets_a_lost_second_factor(admin):
    otp_device_for(admin)
    other = UserFactory(role=Role.ADMIN)
    assert_error(
        bearer_client(admin).post(f"/api/users/{admin.id}/otp-reset/"), 403, "cannot_reset_self"
    )
    assert bearer_client(other).post(f"/api/users/{admin.id}/otp-reset/").status_code == 204
    assert not TOTPDevice.objects.filter(user=admin).exists()
    record = AuditRecord.objects.get(action="otp_reset", outcome="success")
    assert (record.actor_id, record.resource_id) == (other.id, str(admin.id))
    response = login()
    assert (response.status_code, response.json()["error"]["code"]) == (
        403,
        "otp_enrollment_required",
    )


def test_nobody_is_required_when_the_setting_is_empty(admin, settings):
    settings.MFA_REQUIRED_ROLES = []
    assert login().status_code == 200
    assert AuditRecord.objects.filter(action="login", actor_id=admin.id).count() == 1
