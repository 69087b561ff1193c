"""Under /api/ every error has the contract's JSON shape: unrouted paths, uncaught exceptions,
bodies that no parser can read, impossible filter values (issue: hardening, defect 4)."""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client

from accounts import views as account_views
from clinical import views as clinical_views
from common.api import RETRY_AFTER_SECONDS
from testing.assertions import assert_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/nope/", "/api/records/x/y/", "/api/v9/patients/"])
def test_unrouted_api_paths_answer_json_404(api, path):
    assert_error(api.get(path), 404, "not_found")


def test_paths_outside_the_api_keep_the_html_404(api):
    response = api.get("/definitely-not-a-page/")
    assert response.status_code == 404
    assert "json" not in response["Content-Type"]


def test_an_uncaught_exception_under_the_api_answers_json_500(api, monkeypatch):
    def broken(self, request, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(account_views.LoginView, "post", broken)
    api.raise_request_exception = False
    response = api.post("/api/auth/login/", {"email": "a@example.org", "password": "x"})
    assert_error(response, 500, "server_error")


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000 + "]" * 100_000, '{"email": NaN, "password": "x"}', '{"email": "a@b.c", '],
)
def test_login_refuses_unreadable_json_with_400(api, body):
    response = api.post("/api/auth/login/", body, content_type="application/json")
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize(
    "body",
    [
        b'--xyz\r\nContent-Disposition: form-data; name="email"\r\n\r\na@b.c\r\n',  # unclosed
        b"not multipart at all",
        b"--xyz\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--xyz--\r\n",  # no name
    ],
)
def test_malformed_multipart_is_a_json_400(api, body):
    response = api.generic(
        "POST", "/api/auth/login/", body, content_type="multipart/form-data; boundary=xyz"
    )
    assert response.status_code == 400, response.content
    assert_error(response, 400)


def test_multipart_without_boundary_is_a_json_400(api):
    response = api.generic("POST", "/api/auth/login/", b"x", content_type="multipart/form-data")
    assert_error(response, 400)


@pytest.mark.parametrize(
    "query",
    [
        "raised_after=2026-12-01T10:00:00%2B23:03",
        "raised_before=2026-12-01T10:00:00-16:00",
        "raised_after=0001-01-01T00:00:00%2B14:00",
    ],
)
def test_alert_filters_refuse_impossible_date_times(doctor_api, query):
    assert_error(doctor_api.get(f"/api/alerts/?{query}"), 400, "validation_error")


def test_patient_filters_refuse_impossible_date_times(doctor_api):
    response = doctor_api.get("/api/patients/?admitted_after=2026-12-01T10:00:00%2B23:03")
    assert_error(response, 400, "validation_error")


def _many_parts(count: int) -> bytes:
    part = b'--xyz\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n'
    return b"".join(part % i for i in range(count)) + b"--xyz--\r\n"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # More fields than DATA_UPLOAD_MAX_NUMBER_FIELDS: Django refuses the body before DRF.
        (_many_parts(1200), "multipart/form-data; boundary=xyz"),
        ("&".join(["a=1"] * 1200), "application/x-www-form-urlencoded"),
    ],
)
def test_a_body_django_refuses_before_the_view_is_a_json_400(api, body, content_type):
    response = api.generic("POST", "/api/auth/login/", body, content_type=content_type)
    assert_error(response, 400, "bad_request")


# --- The database unavailable: 503 storage_unavailable, never a 500 ---------------------------


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_database_outage_in_a_view_answers_503_in_the_error_shape(nurse_api, monkeypatch, error):
    def unavailable(self, request, *args, **kwargs):
        raise error("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(clinical_views.PatientViewSet, "list", unavailable)
    nurse_api.raise_request_exception = False
    response = nurse_api.get("/api/patients/")
    assert_error(response, 503, "storage_unavailable")
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)


def _database_down_middleware(get_response):
    def middleware(request):
        raise OperationalError("server closed the connection unexpectedly")

    return middleware


def test_a_database_outage_in_a_middleware_answers_503_under_the_api(settings):
    # Outside DRF (a session or authentication middleware reading the database): handler500.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}._database_down_middleware"]
    client = Client(raise_request_exception=False)
    response = client.get("/api/patients/")
    assert_error(response, 503, "storage_unavailable")
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    # Outside the API, Django's own 500 page stays.
    assert client.get("/").status_code == 500
