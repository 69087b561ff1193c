"""JWT sessions that end when they should.

Every login issues tokens carrying two claims beside simplejwt's own:
- ``gen``: the user's ``token_generation`` at issue. Ending every session of a person
  (password change or reset, log out everywhere, deactivation, a role or place change that
  removes access) bumps the generation, so every refresh and access token issued before is
  refused at once; the refresh tokens are blacklisted too.
- ``sid``: the login session, copied into every access token refreshed from it (simplejwt
  copies claims) and kept through refresh rotation. A logout puts the session on a denylist
  (the cache, for as long as a refresh token lives), so the access tokens of that session are
  refused as well as its refresh token.
Tokens without these claims (made by tests or before this existed) count as generation 0 and
no session.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.core.cache import cache
from django.db.models import F
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User

logger = logging.getLogger(__name__)

GENERATION_CLAIM = "gen"
SESSION_CLAIM = "sid"
_DENY_PREFIX = "jwt-session-ended:"


def session_tokens_issue(*, user: User) -> RefreshToken:
    refresh = RefreshToken.for_user(user)
    refresh[GENERATION_CLAIM] = user.token_generation
    refresh[SESSION_CLAIM] = uuid.uuid4().hex
    return refresh


def session_end(*, claims: Mapping[str, Any]) -> None:
    """Refuse the session's remaining access tokens (its refresh token is blacklisted by the
    caller)."""
    sid = claims.get(SESSION_CLAIM)
    if sid:
        lifetime = jwt_settings.REFRESH_TOKEN_LIFETIME.total_seconds()
        cache.set(f"{_DENY_PREFIX}{sid}", 1, timeout=int(lifetime) + 60)


def session_ended(claims: Mapping[str, Any]) -> bool:
    sid = claims.get(SESSION_CLAIM)
    if not sid:
        return False
    try:
        return cache.get(f"{_DENY_PREFIX}{sid}") is not None
    except Exception:  # Redis away: the generation check still holds; do not refuse everyone
        logger.warning("session denylist unavailable; session %s not checked", sid)
        return False


def token_current(claims: Mapping[str, Any], user: User) -> bool:
    """Whether a token's claims still open a session of ``user``."""
    if int(claims.get(GENERATION_CLAIM, 0) or 0) != user.token_generation:
        return False
    return not session_ended(claims)


def generation_bump(*, user: User) -> None:
    """Every token issued to the user so far stops working."""
    User.objects.filter(pk=user.pk).update(token_generation=F("token_generation") + 1)
    user.refresh_from_db(fields=["token_generation"])
