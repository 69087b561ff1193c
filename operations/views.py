"""Probes for load balancers and process supervisors (the contract's "Operations")."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.metrics_http import metrics_access_error, metrics_registry, metrics_render
from operations.health import readiness


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves requests (checks nothing else)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database, Redis, the channel layer and the alarm evaluators are fit for
    work; 503 names the failing check. Redis away is ``degraded`` (200): readings are still
    stored and acked (``operations.health``)."""
    status, checks = readiness()
    body: dict[str, object] = {"status": status, "checks": checks}
    if status == "degraded":
        body["degraded"] = sorted(name for name, value in checks.items() if value != "ok")
    return JsonResponse(body, status=503 if status == "unavailable" else 200)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """This process's metrics in the Prometheus text format (OpenMetrics on request), for
    loopback or ``Authorization: Bearer <METRICS_TOKEN>``; else 401/403 in the error shape."""
    error = metrics_access_error(request.META)
    if error is not None:
        response = JsonResponse(error.as_dict(), status=error.status)
        if error.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics_render(metrics_registry(), request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
