"""Swagger UI, ReDoc and the admin login render in a real browser under their
Content-Security-Policy: no script or style of theirs is blocked."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser]

WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        ("/api/docs/", ".swagger-ui .info .title"),
        ("/api/redoc/", "h1:has-text('Patient Monitoring API')"),
        ("/admin/login/", "form#login-form input[name=username]"),
    ],
)
def test_page_renders_under_its_policy(page_server, new_page, path, rendered):
    page = new_page()
    page.add_init_script(WATCH_VIOLATIONS)
    response = page.goto(page_server + path)
    assert (
        response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    )
    page.wait_for_selector(rendered, state="attached", timeout=60_000)
    page.wait_for_load_state("networkidle")
    # Nothing of the page's own is blocked. ReDoc's "powered by" logo from its CDN is, as the
    # policy means it to be (no third-party resources; the ward network may have no internet).
    violations = page.evaluate("window.__violations")
    assert [v for v in violations if v != "img-src https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
