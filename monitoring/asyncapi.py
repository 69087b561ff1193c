"""GET /api/asyncapi/: the AsyncAPI 3.0 document of the WebSocket channels (YAML or JSON)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

ASYNCAPI_PATH = Path(__file__).with_name("asyncapi.yaml")


@cache
def asyncapi_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(ASYNCAPI_PATH.read_text())
    return document


@require_GET
def asyncapi_view(request: HttpRequest) -> HttpResponse:
    """Public, like the OpenAPI schema: ``?format=json`` for JSON, YAML otherwise."""
    if request.GET.get("format") == "json":
        return HttpResponse(
            json.dumps(asyncapi_document(), indent=2), content_type="application/json"
        )
    return HttpResponse(ASYNCAPI_PATH.read_text(), content_type="application/yaml")
