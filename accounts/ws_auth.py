"""WebSocket authentication of people: the in-band ``auth`` frame carries an access JWT.

Tokens never travel in the URL (it ends up in logs); the dashboard sends
``{"type": "auth", "token": "<access JWT>"}`` as its first frame and may send it again later
to extend the session before the token expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from rest_framework.exceptions import AuthenticationFailed

from accounts.authentication import JWTAuthentication
from accounts.models import User
from accounts.sessions import SESSION_CLAIM
from common.errors import NotAuthenticated


@dataclass(frozen=True, slots=True)
class WsSession:
    user: User
    expires_at: float  # the access token's ``exp`` (Unix time)
    session_id: str | None = None  # the login session (``sid`` claim): a logout ends it


def ws_authenticate(token: Any) -> WsSession:
    """Validate an access JWT and load its active user; raises ``NotAuthenticated``."""
    if not isinstance(token, str) or not token:
        raise NotAuthenticated("An access token is required.", code="not_authenticated")
    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(token.encode())
        # Refuses unknown and inactive users. It loads AUTH_USER_MODEL (simplejwt's types say
        # AbstractBaseUser).
        user = cast("User", auth.get_user(validated))
    except AuthenticationFailed as exc:
        raise NotAuthenticated(
            "The access token is not valid or has expired.", code="authentication_failed"
        ) from exc
    sid = validated.get(SESSION_CLAIM)
    return WsSession(
        user=user,
        expires_at=float(validated["exp"]),
        session_id=str(sid) if sid else None,
    )


def ws_user_is_active(user_id: int) -> bool:
    return User.objects.filter(id=user_id, is_active=True).exists()


def ws_user_payload(user: User) -> dict[str, Any]:
    """The ``user`` of the ``auth.ok`` frame (the REST user fields)."""
    return {
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": user.role,
        "places": sorted(user.places.values_list("id", flat=True)),
    }
