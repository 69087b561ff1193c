from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client


@pytest.mark.parametrize("path", ["/api/docs/", "/api/swagger/", "/api/redoc/"])
def test_api_docs_pages_load_everything_from_this_server(path):
    response = Client().get(path)
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, "the page should load its UI scripts"
    # Hospital networks may have no internet: no CDN, every asset from our own origin.
    assert not [s for s in sources if s.startswith(("http://", "https://", "//"))]
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), f"{source} is not shipped"


def test_openapi_schema_documents_both_auth_schemes():
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schemes = response.json()["components"]["securitySchemes"]
    kinds = {(s["type"], s.get("scheme", s.get("name"))) for s in schemes.values()}
    assert ("http", "bearer") in kinds
    assert any(s["type"] == "apiKey" and s.get("name") == "Authorization" for s in schemes.values())
