"""The second factor: TOTP (RFC 6238) with recovery codes, on django-otp's TOTP and static
devices.

A person has a second factor once a TOTP device of theirs is confirmed. Roles in
``MFA_REQUIRED_ROLES`` (default ``admin``) must have one: their password alone yields no
token, only an enrolment (a fresh secret and a short-lived signed enrolment token); the first
code from the authenticator confirms it and returns the tokens with ``RECOVERY_CODES`` single-use
recovery codes (a django-otp static device). Other roles may enrol from their session. A
recovery code is accepted wherever a TOTP code is. An administrator who lost the device uses a
recovery code, or another administrator resets their second factor (they enrol again at their
next login).
"""

from __future__ import annotations

from base64 import b32encode
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from common.errors import ApplicationError, NotAuthenticated

RECOVERY_CODES = 10
ENROLLMENT_SALT = "accounts.mfa.enrollment"
ENROLLMENT_MAX_AGE_SECONDS = 600
DEVICE_NAME = "authenticator"
RECOVERY_NAME = "recovery"


class EnrollmentInvalid(ApplicationError, status=400, code="enrollment_invalid"): ...


# Its fields are the contract's `enrollment` object, as ``dataclasses.asdict`` renders it.
@dataclass(frozen=True, slots=True)
class Enrollment:
    token: str
    secret: str
    otpauth_uri: str


class EnrollmentRequired(ApplicationError, status=403, code="otp_enrollment_required"):
    """403 with the enrolment beside the error, as the contract has it."""

    def __init__(self, enrollment: Enrollment) -> None:
        super().__init__(
            "Your role requires a second factor: add the secret to an authenticator app and "
            "confirm with its first code."
        )
        self.enrollment = enrollment

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "enrollment": asdict(self.enrollment)}


# What else may require a second factor of a person, registered by higher apps in their
# ``ready()`` (clinical: a place that requires one of its doctors).
_requirements: list[Callable[[User], bool]] = []


def mfa_requirement_register(requirement: Callable[[User], bool]) -> None:
    if requirement not in _requirements:
        _requirements.append(requirement)


def mfa_required(user: User) -> bool:
    """Whether the person must have a second factor: their role is in MFA_REQUIRED_ROLES, or
    a registered requirement (a place of theirs) says so."""
    roles = set(settings.MFA_REQUIRED_ROLES)
    if user.role in roles or (user.is_superuser and "admin" in roles):
        return True
    return any(requirement(user) for requirement in _requirements)


def mfa_enabled(user: User) -> bool:
    return bool(TOTPDevice.objects.filter(user=user, confirmed=True).exists())


def mfa_verify(*, user: User, code: str) -> bool:
    """A current TOTP code of a confirmed device, or an unused recovery code (used up)."""
    code = (code or "").strip().replace(" ", "").lower()
    if not code:
        return False
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        if code.isdigit() and device.verify_token(code):
            return True
    return any(
        device.verify_token(code)
        for device in StaticDevice.objects.filter(user=user, confirmed=True)
    )


def _secret(device: TOTPDevice) -> str:
    return b32encode(device.bin_key).decode("ascii")


@transaction.atomic
def mfa_enrollment_start(*, user: User) -> Enrollment:
    """A new unconfirmed TOTP device (replacing any earlier unconfirmed one) and the signed
    token that confirms it within ``ENROLLMENT_MAX_AGE_SECONDS``."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    token = signing.dumps({"user": user.pk, "device": device.pk}, salt=ENROLLMENT_SALT)
    return Enrollment(token=token, secret=_secret(device), otpauth_uri=device.config_url)


def _enrollment_device(token: str) -> TOTPDevice:
    try:
        data = signing.loads(token, salt=ENROLLMENT_SALT, max_age=ENROLLMENT_MAX_AGE_SECONDS)
    except signing.BadSignature:
        raise EnrollmentInvalid("The enrolment is unknown or expired: log in again.") from None
    device = (
        TOTPDevice.objects.select_related("user")
        .filter(pk=data.get("device"), user_id=data.get("user"), confirmed=False)
        .first()
    )
    if device is None or not device.user.is_active:
        raise EnrollmentInvalid("The enrolment is unknown or expired: log in again.")
    return device


def mfa_enrollment_user(token: str) -> User:
    user: User = _enrollment_device(token).user
    return user


@transaction.atomic
def mfa_enrollment_confirm(*, token: str, code: str) -> tuple[User, list[str]]:
    """Confirm the enrolment with the authenticator's first code: the device becomes the
    user's second factor (replacing any earlier one), and fresh recovery codes are issued."""
    device = _enrollment_device(token)
    user = device.user
    if not (code or "").strip().isdigit() or not device.verify_token(code.strip()):
        raise NotAuthenticated("The code is not valid.", code="otp_invalid")
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return user, mfa_recovery_codes_issue(user=user)


def mfa_recovery_codes_issue(*, user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def mfa_remove(*, user: User) -> int:
    """Remove every second factor of the user (an administrator's reset)."""
    removed: int = TOTPDevice.objects.filter(user=user).delete()[0]
    StaticDevice.objects.filter(user=user).delete()
    return removed
