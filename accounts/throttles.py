"""Per-client (IP) throttles for the unauthenticated account endpoints.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] at request time (not import time),
and counters live in the default cache, which is Redis, so every server process shares them.

While Redis is away the counters cannot be read or written, and the throttles let requests
through (fail open): staff must be able to log in during a Redis outage. Password guessing
is still bounded then: django-axes counts failed logins per account and client address in
the database and locks that pair out (``AXES_FAILURE_LIMIT``).
"""

from __future__ import annotations

import logging
from typing import cast

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from common.redis_errors import REDIS_ERRORS

logger = logging.getLogger(__name__)


class _ClientThrottle(SimpleRateThrottle):
    bucket = ""

    def get_rate(self) -> str | None:
        # The rates are "number/period" strings; djangorestframework-stubs types them as numbers.
        rates = cast("dict[str, str | None]", api_settings.DEFAULT_THROTTLE_RATES)
        return rates.get(self.scope) if self.scope is not None else None

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except REDIS_ERRORS as exc:
            logger.warning(
                "%s throttle not applied: the cache is unavailable (%r)", self.scope, exc
            )
            return True

    def get_cache_key(self, request: Request, view: APIView) -> str:
        ident = self.get_ident(request)
        return self.cache_format % {"scope": f"{self.scope}{self.bucket}", "ident": ident}


class LoginThrottle(_ClientThrottle):
    scope = "login"


class RegisterThrottle(_ClientThrottle):
    scope = "register"


class PasswordForgotThrottle(_ClientThrottle):
    scope = "password_reset"
    bucket = ":forgot"


class PasswordResetThrottle(_ClientThrottle):
    scope = "password_reset"
    bucket = ":reset"
