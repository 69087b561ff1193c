from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "static" / "frontend"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "frontend"


def test_dashboard_page_is_served_at_the_root(client):
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert '<script type="module" src="/static/frontend/js/main.js"></script>' in body
    assert "/static/frontend/css/app.css" in body
    assert 'aria-live="assertive"' in body
    assert response["Cache-Control"] == "no-store"


def test_dashboard_page_carries_the_servers_priority_ranking(client):
    """The page orders alarms by the ranking of alerts.vocabulary, not one of its own."""
    import json

    from alerts.vocabulary import PRIORITY_RANK

    body = client.get("/").content.decode()
    found = re.search(r'<script id="vocabulary" type="application/json">(.*?)</script>', body)
    assert found is not None
    assert (
        json.loads(found.group(1))["priority_rank"]
        == PRIORITY_RANK
        == {
            "low": 1,
            "medium": 2,
            "high": 3,
        }
    )
    assert "high: 3" not in (STATIC / "js" / "util.js").read_text()


def test_dashboard_page_forbids_third_party_resources(client):
    csp = client.get("/")["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self' ws: wss:" in csp


def test_dashboard_page_only_answers_get(client):
    assert client.post("/").status_code == 405


@pytest.mark.parametrize(
    "path",
    sorted(p for p in [*STATIC.rglob("*.js"), *STATIC.rglob("*.css"), *TEMPLATES.rglob("*.html")]),
    ids=lambda p: p.name,
)
def test_nothing_is_loaded_from_the_internet(path):
    """No CDN, no external fonts: the ward network may have no internet."""
    text = path.read_text()
    assert not re.search(r"https?://", text), f"{path.name} refers to an external URL"
    assert "@import url(" not in text and "@font-face" not in text


def test_static_modules_are_found_by_the_staticfiles_finders():
    from django.contrib.staticfiles import finders

    for name in ("main.js", "api.js", "socket.js", "ward.js", "trend.js", "patient.js"):
        assert finders.find(f"frontend/js/{name}"), name
    assert finders.find("frontend/css/app.css")
