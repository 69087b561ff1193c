"""E-mail rendering. Builders return unsent messages; services and tasks send them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage

if TYPE_CHECKING:
    from accounts.models import User

PRODUCT_NAME = "Patient Monitor"


def _greeting(user: User) -> str:
    return f"Hello {user.first_name}," if user.first_name else "Hello,"


def credentials_email(*, user: User, password: str) -> EmailMessage:
    """The login and one-time password of an account an administrator created."""
    body = "\n".join(
        [
            _greeting(user),
            "",
            f"An administrator created your {PRODUCT_NAME} account.",
            "",
            f"  Login (e-mail):     {user.email}",
            f"  One-time password:  {password}",
            "",
            "You will be asked to choose your own password when you first sign in.",
            "If you did not expect this e-mail, tell your hospital's administrator.",
        ]
    )
    return EmailMessage(
        subject=f"Your {PRODUCT_NAME} account",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )


def password_reset_email(*, user: User, code: str, valid_minutes: int) -> EmailMessage:
    """The one-time code that lets the user choose a new password."""
    body = "\n".join(
        [
            _greeting(user),
            "",
            f"Your {PRODUCT_NAME} password reset code is:",
            "",
            f"  {code}",
            "",
            f"It is valid for {valid_minutes} minutes and can be used once.",
            "A new request replaces this code. If you did not ask for a reset, ignore this",
            "e-mail: your password has not changed.",
        ]
    )
    return EmailMessage(
        subject=f"{PRODUCT_NAME} password reset code",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
