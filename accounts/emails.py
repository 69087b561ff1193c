"""The e-mails of accounts: a new account's one-time password and the password-reset code.

The secrets are made here, in the worker that sends the e-mail, so they never travel through
the broker, task arguments or logs. Builders return unsent messages."""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.mail import EmailMessage

from accounts import otp
from accounts.models import User

logger = logging.getLogger(__name__)

PRODUCT_NAME = "Patient Monitor"
PASSWORD_RESET = "password_reset"  # the one-time-code purpose of password resets
# Letters and digits that cannot be mistaken for each other when read from an e-mail.
_PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
ONE_TIME_PASSWORD_LENGTH = 14


def _message(*, user: User, subject: str, lines: list[str]) -> EmailMessage:
    """An e-mail to the user: a greeting, then the lines."""
    greeting = f"Hello {user.first_name}," if user.first_name else "Hello,"
    return EmailMessage(
        subject=subject,
        body="\n".join([greeting, "", *lines]),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )


def credentials_email(*, user: User, password: str) -> EmailMessage:
    """The login and one-time password of an account an administrator created."""
    return _message(
        user=user,
        subject=f"Your {PRODUCT_NAME} account",
        lines=[
            f"An administrator created your {PRODUCT_NAME} account.",
            "",
            f"  Login (e-mail):     {user.email}",
            f"  One-time password:  {password}",
            "",
            "You will be asked to choose your own password when you first sign in.",
            "If you did not expect this e-mail, tell your hospital's administrator.",
        ],
    )


def password_reset_email(*, user: User, code: str, valid_minutes: int) -> EmailMessage:
    """The one-time code that lets the user choose a new password."""
    return _message(
        user=user,
        subject=f"{PRODUCT_NAME} password reset code",
        lines=[
            f"Your {PRODUCT_NAME} password reset code is:",
            "",
            f"  {code}",
            "",
            f"It is valid for {valid_minutes} minutes and can be used once.",
            "A new request replaces this code. If you did not ask for a reset, ignore this",
            "e-mail: your password has not changed.",
        ],
    )


def user_credentials_send(*, user_id: int) -> bool:
    """Called by the credentials task: make a one-time password, e-mail it, then store it.

    The password exists only here and in the e-mail: it never travels through the broker,
    the task arguments, the result backend or the logs. It is stored only if the user still
    holds the placeholder that ``user_create`` set, so a repeated or late task does nothing
    once the password was issued (idempotent), and a mail that failed leaves nothing behind
    (the retry makes a fresh password).
    """
    user = User.objects.filter(pk=user_id).first()
    if user is None or not user.is_active or not user.must_change_password:
        return False
    if user.has_usable_password():
        return False
    placeholder = user.password
    password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(ONE_TIME_PASSWORD_LENGTH))
    credentials_email(user=user, password=password).send()
    stored = User.objects.filter(pk=user.pk, password=placeholder).update(
        password=make_password(password)
    )
    logger.info("credentials e-mail sent to user %s (stored=%s)", user.pk, bool(stored))
    return bool(stored)


def user_reset_code_send(*, user_id: int) -> bool:
    """Called by the reset task: a new code (replacing the previous one) and its e-mail.

    The code is made here, in the worker, so it never travels through the broker or logs."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    code = otp.otp_issue(purpose=PASSWORD_RESET, user_id=user.pk)
    password_reset_email(user=user, code=code, valid_minutes=settings.OTP_TTL_SECONDS // 60).send()
    logger.info("password reset code e-mailed to user %s", user.pk)
    return True
