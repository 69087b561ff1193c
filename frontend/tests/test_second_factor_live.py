"""Signing in with a second factor, end to end: the system Chromium against a real Daphne that
requires one of administrators. First sign-in enrols (key, first code, recovery codes); a later
one asks for a code and takes a recovery code; the patient page shows an administrator who
accessed the record."""

from __future__ import annotations

import base64
import time

import pytest
from django_otp.oath import TOTP

from frontend.tests.live_stack import LiveStack
from testing.processes import manage as manage_command

pytestmark = [pytest.mark.browser, pytest.mark.live]

ADMIN = "root@example.org"
PASSWORD = "Root-Passw0rd-2026"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, browser):
    live = LiveStack(tmp_path_factory.mktemp("mfa"))
    try:
        live.env["MFA_REQUIRED_ROLES"] = "admin"
        live.seed = live.prepare()
        manage_command(
            {**live.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
            "createsuperuser",
            "--noinput",
            "--email",
            ADMIN,
        )
        live.start()
        yield live
    finally:
        live.close()


def current_code(secret: str) -> str:
    totp = TOTP(base64.b32decode(secret), step=30, t0=0, digits=6, drift=0)
    totp.time = time.time()
    return f"{totp.token():06d}"


def sign_in(page, url: str) -> None:
    page.goto(url + "/")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("form.signin button[type=submit]")


def test_enrol_then_sign_in_with_a_recovery_code_and_see_who_accessed(stack, new_page):
    page = new_page()
    sign_in(page, stack.url)
    page.wait_for_selector("#otp-enroll")
    secret = page.input_value("#otp-secret")
    assert page.get_attribute("#otp-uri", "href").startswith("otpauth://totp/")
    page.fill("#otp-confirm", current_code(secret))
    page.click("#otp-enroll button[type=submit]")
    page.wait_for_selector("#recovery-codes li")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    page.click("#recovery-done")
    page.wait_for_selector("a.ward-link")

    page.click("#signout")
    sign_in(page, stack.url)
    page.wait_for_selector("#otp:visible")
    assert "code" in page.inner_text("#signin-error").lower()
    page.fill("#otp", codes[0])
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("a.ward-link")

    patient = stack.seed["patients"][0]["id"]
    page.goto(f"{stack.url}/#/patient/{patient}")
    page.wait_for_selector("#access-card tbody tr")
    rows = page.locator("#access-card tbody tr").all_inner_texts()
    assert any(ADMIN in row and "read patient" in row for row in rows), rows
