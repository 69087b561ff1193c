"""Cross-cutting REST pieces: the exception handler, pagination, error schema for OpenAPI."""

from __future__ import annotations

import logging
import sys
from typing import Any

import redis
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from common.errors import ApplicationError, error_body

logger = logging.getLogger(__name__)

# The database cannot be reached (down, restarting, a connection cut): not a bug of the request
# nor of the server. The caller hears 503 and tries again; nothing of a refused write is kept
# (the transaction it was in is rolled back with the connection).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def database_unavailable_body() -> dict[str, Any]:
    return error_body(
        "storage_unavailable",
        "The database is unavailable now; the request was not carried out. Try again shortly.",
    )


_DRF_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def _flatten_details(detail: Any) -> dict[str, Any]:
    """DRF details become {field: [messages]}; non-field errors go under "non_field_errors"."""
    if isinstance(detail, dict):
        return {str(key): _as_list(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if detail and all(isinstance(item, dict) for item in detail):
            # A list payload (a batch of readings): keep the per-item structure by index.
            return {str(index): item for index, item in enumerate(detail) if item}
        return {"non_field_errors": [str(item) for item in detail]}
    return {"non_field_errors": [str(detail)]}


def _as_list(value: Any) -> Any:
    if isinstance(value, list):
        return [item if isinstance(item, (dict, list)) else str(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _as_list(v) for k, v in value.items()}
    return [str(value)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DATABASE_UNAVAILABLE):
        logger.error("request not served: the database is unavailable (%r)", exc)
        set_rollback()  # a lock or statement timeout leaves the connection up: undo the rest
        return Response(
            database_unavailable_body(),
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        field_errors = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return Response(
            error_body("validation_error", "The request is not valid.", field_errors), status=400
        )
    if isinstance(exc, redis.RedisError):
        # A view that needs Redis (one-time codes) while it is away: try again later, not a 500.
        logger.error("%s: Redis is unavailable (%r)", context.get("view"), exc)
        return Response(
            error_body("unavailable", "A service this request needs is unavailable; retry later."),
            status=503,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if type(exc) is cls), None)
    if code is None:
        code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        message = "The request is not valid."
        details: dict[str, Any] | None = _flatten_details(exc.detail)
    else:
        detail = getattr(exc, "detail", "")
        message = str(detail) if not isinstance(detail, (dict, list)) else "Request failed."
        details = None
        if isinstance(exc, exceptions.AuthenticationFailed) and isinstance(detail, dict):
            message = str(detail.get("detail", message))
            code = str(detail.get("code", code)) if code == "authentication_failed" else code
    response.data = error_body(code, message, details)
    return response


# --- Errors outside DRF views: unrouted paths and uncaught exceptions --------------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: the contract's error shape under /api/, Django's page elsewhere."""
    if _is_api(request):
        return JsonResponse(error_body("not_found", f"No endpoint at {request.path}."), status=404)
    return defaults.page_not_found(request, exception or Http404())


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: an uncaught exception (already logged by Django) under /api/ answers the
    error shape; the details stay in the log. The database being unavailable outside a DRF view
    (in a middleware) is a 503 there too, as in ``exception_handler``."""
    if _is_api(request):
        if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
            response = JsonResponse(database_unavailable_body(), status=503)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        return JsonResponse(
            error_body("server_error", "The server failed to handle the request."), status=500
        )
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: a request Django refuses before any view (a malformed body, a
    suspicious header) answers the error shape under /api/."""
    if _is_api(request):
        return JsonResponse(
            error_body("bad_request", "The request is malformed and was not handled."),
            status=400,
        )
    return defaults.bad_request(request, exception)


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(allow_null=True),
            },
        )
    },
)

ERROR_RESPONSES = {
    status.HTTP_400_BAD_REQUEST: OpenApiResponse(ErrorSerializer, description="Validation error"),
    status.HTTP_401_UNAUTHORIZED: OpenApiResponse(
        ErrorSerializer, description="No or bad credentials"
    ),
    status.HTTP_403_FORBIDDEN: OpenApiResponse(ErrorSerializer, description="Role not allowed"),
    status.HTTP_404_NOT_FOUND: OpenApiResponse(
        ErrorSerializer, description="Missing or not visible"
    ),
}
CONFLICT_RESPONSE = OpenApiResponse(ErrorSerializer, description="Conflict with the current state")


# The query parameters of a span of time on a patient's trace: `from` (inclusive), `to` (exclusive).
TIME_SPAN_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start (inclusive)."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="End (exclusive)."),
]


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The documented error answers of a view, by status code (409: a conflict)."""
    table = {**ERROR_RESPONSES, status.HTTP_409_CONFLICT: CONFLICT_RESPONSE}
    return {code: table[code] for code in codes}
