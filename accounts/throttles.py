"""Per-client (IP) throttles for the unauthenticated account endpoints.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] at request time (not import time),
and counters live in the default cache, which is Redis, so every server process shares them.
"""

from __future__ import annotations

from typing import cast

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class _ClientThrottle(SimpleRateThrottle):
    bucket = ""

    def get_rate(self) -> str | None:
        # The rates are "number/period" strings; djangorestframework-stubs types them as numbers.
        rates = cast("dict[str, str | None]", api_settings.DEFAULT_THROTTLE_RATES)
        return rates.get(self.scope) if self.scope is not None else None

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
