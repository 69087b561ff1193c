"""The hooks django-axes calls: whose failures count together, and what a locked-out login hears.

The API login posts ``email``, the admin login form ``username``; both name the same account
(the e-mail, normalised), so failures at either door add up.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from common.errors import error_body

LOCKED_MESSAGE = "Too many failed logins. Try again later."


def lockout_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    source: Any = credentials or getattr(request, "data", None) or request.POST
    value = source.get("email") or source.get("username")
    if not isinstance(value, str):
        return None
    return value.strip().lower()


def lockout_client_address(request: HttpRequest) -> str:
    # common.proxies has already made REMOTE_ADDR the client (a trusted proxy's X-Forwarded-For).
    return str(request.META.get("REMOTE_ADDR", ""))


def lockout_retry_after() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_response(request: HttpRequest, *args: Any) -> HttpResponse:
    """429 with ``Retry-After``: the contract's error shape under /api/, plain text elsewhere
    (the admin login page)."""
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(error_body("throttled", LOCKED_MESSAGE), status=429)
    else:
        response = HttpResponse(LOCKED_MESSAGE, status=429, content_type="text/plain")
    response["Retry-After"] = str(lockout_retry_after())
    return response
