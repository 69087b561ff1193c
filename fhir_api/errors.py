"""Errors of the FHIR API as OperationOutcome resources with the fitting HTTP status.

Services and selectors raise the project's ``ApplicationError`` family and DRF raises its
own exceptions; ``exception_handler`` renders both as an OperationOutcome instead of the
REST API's error shape.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from common.api import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS
from common.errors import ApplicationError

# The OperationOutcome issue type (http://hl7.org/fhir/issue-type) of each HTTP status.
_ISSUE_TYPE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    415: "not-supported",
    429: "throttled",
}


class InvalidSearch(ApplicationError, status=400, code="invalid"):
    """A search parameter or value this server does not understand."""


class NotSupported(ApplicationError, status=400, code="not-supported"):
    """A parameter FHIR defines that this server does not implement."""


def operation_outcome(
    message: str, *, issue: str = "processing", severity: str = "error"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": issue, "diagnostics": message}],
    }


def _message(exc: exceptions.APIException) -> str:
    detail: Any = exc.detail
    if isinstance(detail, dict):
        detail = detail.get("detail", next(iter(detail.values()), ""))
    if isinstance(detail, list):
        return "; ".join(str(item) for item in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The DRF exception handler of every FHIR view."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        # As in the REST API: the database unreachable is a 503, try again (issue "transient").
        return Response(
            operation_outcome(
                "The database is unavailable now; try again shortly.", issue="transient"
            ),
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, ApplicationError):
        issue = exc.code if isinstance(exc, (InvalidSearch, NotSupported)) else None
        return Response(
            operation_outcome(
                exc.message, issue=issue or _ISSUE_TYPE.get(exc.status, "processing")
            ),
            status=exc.status,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a server fault: Django's 500 handling and logging
    headers: dict[str, str] = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(wait))
    return Response(
        operation_outcome(_message(exc), issue=_ISSUE_TYPE.get(exc.status_code, "processing")),
        status=exc.status_code,
        headers=headers,
    )
