"""The central-station dashboard: one HTML shell; the ES modules under static/ do the rest."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from alerts.vocabulary import KIND_SHORT_NAMES, PRIORITY_RANK

# Everything the page loads comes from this server: no CDN, no external fonts, so the
# dashboard keeps working on a ward network without internet access.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    ]
)


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    # The server's vocabulary, so the page orders alarms exactly as the server does.
    vocabulary = {"priority_rank": PRIORITY_RANK, "kind_short": KIND_SHORT_NAMES}
    response = render(request, "frontend/index.html", {"vocabulary": vocabulary})
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cache-Control"] = "no-store"
    return response
