"""GET /metrics: the contract's families in the Prometheus text format, for loopback or with
the METRICS_TOKEN; anybody else gets the contract's error shape."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from testing.assertions import assert_error
from testing.metrics import scraped_value

CONTRACT_FAMILIES = {
    "monitor_readings_ingested": "counter",
    "monitor_readings_rejected": "counter",
    "monitor_ingest_flush_seconds": "histogram",
    "monitor_ws_connections": "gauge",
    "monitor_alerts_raised": "counter",
    "monitor_event_loop_lag_seconds": "gauge",
}


def test_loopback_reads_every_contract_family_in_the_text_format(client):
    response = client.get("/metrics")  # the test client's REMOTE_ADDR is 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-cache" in response["Cache-Control"]
    text = response.content.decode()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    for name, kind in CONTRACT_FAMILIES.items():
        assert families.get(name) == kind, name
    for path in ("ws", "rest", "hl7"):
        assert scraped_value(text, "monitor_readings_ingested_total", path=path) is not None
    for kind in ("device", "dashboard"):
        assert scraped_value(text, "monitor_ws_connections", kind=kind) is not None


def test_openmetrics_is_served_when_the_scraper_asks(client):
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


def test_outside_requests_are_refused_without_a_configured_token(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert_error(response, 403, "forbidden")
    # No token configured: a bearer header cannot open it either.
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer ")
    assert_error(response, 403, "forbidden")


def test_outside_requests_need_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    for header in ("Bearer wrong", "Basic s3cret-metrics-token", "s3cret-metrics-token"):
        response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION=header)
        assert_error(response, 401, "not_authenticated")
    response = client.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token"
    )
    assert response.status_code == 200
    assert b"monitor_readings_ingested_total" in response.content


@pytest.mark.parametrize(
    "header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"], ids=str.lower
)
def test_a_request_relayed_by_a_local_proxy_is_an_outside_request(client, settings, header):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    response = client.get("/metrics", **{header: "203.0.113.9"})
    assert_error(response, 401, "not_authenticated")
    response = client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", **{header: "203.0.113.9"}
    )
    assert response.status_code == 200


def test_ipv6_loopback_is_loopback(client):
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_metrics_only_answer_get(client):
    assert client.post("/metrics").status_code == 405
