"""HSTS over HTTPS, a Content-Security-Policy on every page, X-Forwarded-Proto only from a
trusted proxy."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

HTTPS: dict[str, Any] = {"HTTP_X_FORWARDED_PROTO": "https"}
PAGES = ["/api/docs/", "/api/swagger/", "/api/redoc/", "/admin/login/", "/api/auth/me/"]


@pytest.fixture
def hsts(settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]


def test_hsts_is_sent_over_https_through_a_trusted_proxy(hsts):
    response = Client(REMOTE_ADDR="10.0.0.2").get("/healthz", **HTTPS)
    assert response["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in Client(REMOTE_ADDR="10.0.0.2").get("/healthz")
    direct = Client().get("/healthz", secure=True)  # TLS ends at the server itself
    assert direct["Strict-Transport-Security"] == "max-age=31536000"


def test_a_client_cannot_claim_https_with_a_forwarded_proto(hsts):
    """From anyone but a trusted proxy X-Forwarded-Proto is dropped: the request stays plain
    HTTP (no HSTS, and Django does not believe it secure)."""
    response = Client(REMOTE_ADDR="198.51.100.4").get("/healthz", **HTTPS)
    assert "Strict-Transport-Security" not in response
    assert response.wsgi_request.is_secure() is False
    assert "HTTP_X_FORWARDED_PROTO" not in response.wsgi_request.META


def test_production_settings_turn_hsts_on():
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; "
        "from django.conf import settings; "
        "print(settings.SECURE_HSTS_SECONDS, settings.TRUSTED_PROXIES, settings.SECURE_PROXY_SSL_HEADER)"
    )
    env = {"DEBUG": "false", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.split(" ", 2)
    assert out[0] == "31536000" and out[1] == "[]"
    dev = subprocess.run(
        [sys.executable, "-c", script],
        env={"DEBUG": "true", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert dev.startswith("0 ")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_a_content_security_policy_without_inline_scripts(client, path):
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    if response["Content-Type"].startswith("text/html"):
        body = response.content.decode()
        # Every executable script is a file from this server (JSON data blocks are inert).
        for attributes in re.findall(r"<script\b([^>]*)>", body):
            assert "src=" in attributes or 'type="application/json"' in attributes, attributes


def test_the_dashboard_keeps_its_own_policy(client):
    from frontend.views import CONTENT_SECURITY_POLICY

    assert client.get("/")["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_swagger_ui_start_up_script_is_served_as_a_file(client):
    body = client.get("/api/docs/").content.decode()
    (script_url,) = re.findall(r'<script src="([^"]*script[^"]*)"', body)
    response = client.get(script_url.replace("&amp;", "&"))
    assert response.status_code == 200 and "SwaggerUIBundle" in response.content.decode()
