"""Bad input on the readings endpoints answers 400 in the error shape, never 500, and nothing
that cannot be read back is ever stored (issue: hardening, defects 2-4)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Reading
from monitoring.views import records as views
from testing.assertions import assert_error
from testing.clients import device_client
from testing.factories import reading_raw
from testing.openapi import assert_documented

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(device):
    return device_client(device.token)


@pytest.mark.parametrize("metric", [["heart_rate"], {"heart_rate": 1}, [], {}])
def test_metric_of_the_wrong_json_type_is_400(client, metric):
    error = assert_error(client.post("/api/records/", reading_raw(metric=metric)), 400)
    assert "metric" in error["details"]
    # In a list: the item is refused, the others stored.
    response = client.post("/api/records/", [reading_raw(1, metric=metric), reading_raw(2)])
    assert response.status_code == 201, response.content
    assert [r["index"] for r in response.json()["rejected"]] == [0]


@pytest.mark.parametrize(
    "recorded_at",
    [
        "2026-12-01T17:00:00+23:00",  # an offset PostgreSQL cannot hold
        "2026-12-01T17:00:00-16:30",
        "0001-01-01T00:00:00+14:00",  # year 0 in UTC
        "0001-01-01T00:00:00+00:00",  # far older than READING_MAX_AGE_DAYS
        "1970-01-01T00:00:00Z",  # a device clock reset to the epoch
    ],
)
def test_recorded_at_the_database_cannot_hold_or_too_old_is_refused(client, recorded_at):
    error = assert_error(
        client.post("/api/records/", reading_raw(recorded_at=recorded_at)), 400, "validation_error"
    )
    assert "recorded_at" in error["details"]
    assert Reading.objects.count() == 0


def test_oldest_accepted_reading_is_configurable(client, settings):
    settings.READING_MAX_AGE_DAYS = 2
    three_days = (timezone.now() - timedelta(days=3)).isoformat()
    one_day = (timezone.now() - timedelta(days=1)).isoformat()
    assert_error(client.post("/api/records/", reading_raw(1, recorded_at=three_days)), 400)
    assert client.post("/api/records/", reading_raw(2, recorded_at=one_day)).status_code == 201
    settings.READING_MAX_AGE_DAYS = 30
    assert client.post("/api/records/", reading_raw(3, recorded_at=three_days)).status_code == 201


def test_offsets_up_to_15_59_are_accepted(client):
    now = timezone.now()
    for seq, offset in ((1, timedelta(hours=14)), (2, -timedelta(hours=15, minutes=59))):
        local = now.astimezone(timezone.get_fixed_timezone(offset)) - timedelta(seconds=1)
        response = client.post("/api/records/", reading_raw(seq, recorded_at=local.isoformat()))
        assert response.status_code == 201, response.content
    assert Reading.objects.count() == 2


def test_manual_year_one_reading_is_refused_and_not_stored(doctor_api, patient):
    body = reading_raw(None, patient=patient.id, recorded_at="0001-01-01T00:00:00+14:00")
    error = assert_error(doctor_api.post("/api/records/", body), 400, "validation_error")
    assert "recorded_at" in error["details"]
    assert Reading.objects.count() == 0
    # The history stays readable.
    assert doctor_api.get(f"/api/records/{patient.id}/").status_code == 200


def test_an_answer_that_cannot_be_rendered_stores_nothing(doctor_api, patient, monkeypatch):
    class Unrenderable(views.RecordsResultSerializer):
        @property
        def data(self):
            raise ValueError("cannot render")

    monkeypatch.setattr(views, "RecordsResultSerializer", Unrenderable)
    doctor_api.raise_request_exception = False
    response = doctor_api.post("/api/records/", reading_raw(None, patient=patient.id))
    assert_error(response, 500, "server_error")
    assert Reading.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        '{"metric": "heart_rate", "bpm": NaN, "seq": 1, "recorded_at": "x"}',
        '{"metric": "heart_rate", "bpm": 80, "seq": Infinity, "recorded_at": "x"}',
        '{"metric": "heart_rate", "bpm": 80, "seq": 1e400, "recorded_at": "x"}',
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
    ],
)
def test_json_that_is_not_rfc_8259_or_nested_too_deep_is_a_parse_error(client, body):
    response = client.post("/api/records/", body, content_type="application/json")
    assert_error(response, 400, "parse_error")
    json.loads(response.content)  # strict JSON: no bare NaN in the answer


@pytest.mark.parametrize("value", ["2026-12-01T10:00:00+23:03", "0001-01-01T00:00:00+14:00"])
def test_history_filters_refuse_impossible_date_times(doctor_api, patient, value):
    for query in ({"from": value}, {"to": value}, {"bucket": 60, "from": value}):
        response = doctor_api.get(f"/api/records/{patient.id}/", query)
        assert_error(response, 400, "validation_error")


def test_history_body_matches_its_documented_schema(doctor_api, client, patient):
    for seq in (1, 2, 3):
        assert client.post("/api/records/", reading_raw(seq)).status_code == 201
    path = "/api/records/{patient_id}/"
    page = doctor_api.get(f"/api/records/{patient.id}/", {"page_size": 2})
    assert page.status_code == 200
    assert_documented(page.json(), path=path, method="get", status=200)
    aggregate = doctor_api.get(f"/api/records/{patient.id}/", {"bucket": 60})
    assert aggregate.status_code == 200
    assert_documented(aggregate.json(), path=path, method="get", status=200)


@pytest.mark.parametrize("value", [2**63, -(10**30)])
def test_numbers_beyond_64_bits_are_refused_not_500(client, nurse_api, patient, value):
    # Found by the schemathesis run: a patient id of -7.9e30 reached the database (500).
    error = assert_error(client.post("/api/records/", reading_raw(seq=value), format="json"), 400)
    assert "seq" in error["details"]
    # A patient id no patient can have is a patient that does not exist.
    response = nurse_api.post("/api/records/", reading_raw(None, patient=value), format="json")
    assert assert_error(response, 404, "not_found")["details"] == {"patient": ["No such patient."]}
    assert not Reading.objects.exists()
