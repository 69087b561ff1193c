from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from monitoring.asyncapi import asyncapi_view

# Under /api/ every error, even an unrouted path or an uncaught exception, has the contract's
# JSON shape.
handler400 = "common.api.bad_request"
handler404 = "common.api.not_found"
handler500 = "common.api.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script, so the
    # page runs under a Content-Security-Policy without 'unsafe-inline' (common/headers.py).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/swagger/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/asyncapi/", asyncapi_view, name="asyncapi"),
    path("api/", include("accounts.urls")),
    path("api/", include("clinical.urls")),
    path("api/", include("monitoring.urls")),
    path("api/", include("alerts.urls")),
    path("api/", include("audit.urls")),
    path("api/", include("hl7v2.urls")),
    path("fhir/", include("fhir_api.urls")),
    path("", include("operations.urls")),
    path("", include("frontend.urls")),
]
