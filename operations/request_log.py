"""Request ids and the access log of the web process.

Each HTTP request gets an id: the caller's ``X-Request-ID`` when it is a sane token (a load
balancer or client that sets one can follow the request through), else a new one. It is bound
to every line logged while the request is handled (``common.logs``), returned in the
``X-Request-ID`` response header, and ends in one access line on the ``access`` logger.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from common.logs import log_context

access_logger = logging.getLogger("access")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_for(request: HttpRequest) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _finish(
    request: HttpRequest, response: HttpResponseBase, request_id: str, started: float
) -> HttpResponseBase:
    response[REQUEST_ID_HEADER] = request_id
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    access_logger.info(
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "client": request.META.get("REMOTE_ADDR"),
        },
    )
    return response


@sync_and_async_middleware
def request_log_middleware(get_response: Callable[[HttpRequest], Any]) -> Any:
    """First in MIDDLEWARE, so that it times and names everything after it."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            request_id, started = request_id_for(request), time.monotonic()
            with log_context(request_id=request_id):
                response = await get_response(request)
                return _finish(request, response, request_id, started)

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        request_id, started = request_id_for(request), time.monotonic()
        with log_context(request_id=request_id):
            return _finish(request, get_response(request), request_id, started)

    return middleware
