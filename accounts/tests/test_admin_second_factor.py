"""/admin/ asks for the second factor of a person who has one or whose role requires one."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from testing.factories import DEFAULT_PASSWORD, UserFactory, otp_device_for, totp_code

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def admin(settings):
    settings.MFA_REQUIRED_ROLES = ["admin"]
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    return UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True, email="a@example.org")


def login(client, **extra):
    return client.post(LOGIN, {"username": "a@example.org", "password": DEFAULT_PASSWORD, **extra})


def test_a_password_alone_does_not_open_the_admin(admin):
    otp_device_for(admin)
    client = Client()
    response = login(client)
    assert response.status_code == 200  # the form again, with its error
    assert b"The code is not valid" in response.content
    assert client.get("/admin/").status_code == 302


def test_the_code_opens_it(admin):
    device = otp_device_for(admin)
    client = Client()
    assert login(client, otp=totp_code(device)).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_required_role_without_a_second_factor_is_sent_to_enrol(admin):
    response = login(Client())
    assert b"set it up by signing in to the dashboard" in response.content


def test_a_session_not_verified_is_refused(admin):
    otp_device_for(admin)
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/").status_code == 302


def test_without_the_requirement_a_password_is_enough(admin, settings):
    settings.MFA_REQUIRED_ROLES = []
    client = Client()
    assert login(client).status_code == 302
    assert client.get("/admin/").status_code == 200
