"""JWT authentication for people, with the first-login password gate.

A user created by an administrator gets a one-time password and ``must_change_password``.
Until they choose their own password every authenticated API call answers 403
``password_change_required``, except on views that set ``password_change_exempt = True``
(me, password change, logout, refresh). Doing it here, in the default authentication class,
covers every app's endpoints without each view having to remember it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt import authentication

from accounts.models import User
from accounts.sessions import token_current


class PasswordChangeRequired(exceptions.PermissionDenied):
    default_detail = "Change your one-time password before using the API."
    default_code = "password_change_required"


def password_change_exempt(request: Request) -> bool:
    view = (getattr(request, "parser_context", None) or {}).get("view")
    return bool(getattr(view, "password_change_exempt", False))


class JWTAuthentication(authentication.JWTAuthentication):
    def get_user(self, validated_token: Any) -> Any:
        """simplejwt's user lookup, refusing tokens of ended sessions (accounts/sessions.py)."""
        user = super().get_user(validated_token)
        if isinstance(user, User) and not token_current(validated_token, user):
            raise exceptions.AuthenticationFailed(
                {"detail": "This session has ended; log in again.", "code": "token_not_valid"}
            )
        return user

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user, _token = result
        if (
            isinstance(user, User)
            and user.must_change_password
            and not password_change_exempt(request)
        ):
            raise PasswordChangeRequired()
        return result


class JWTScheme(SimpleJWTScheme):
    """OpenAPI: the subclass is documented as the same bearer JWT scheme."""

    target_class = "accounts.authentication.JWTAuthentication"
