"""The event-loop lag watch and the exporter port of the processes without HTTP (the evaluator
and the Celery worker use it; their live tests are in test_metrics_live.py)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
from collections.abc import Iterator

import pytest
from prometheus_client.core import GaugeMetricFamily

from common.metrics_http import metrics_exporter_start
from operations import loop_lag
from testing.metrics import metric_value, scrape, scraped_value

LAG = "monitor_event_loop_lag_seconds"


async def test_a_blocked_loop_shows_in_the_lag_gauge():
    watch = asyncio.create_task(loop_lag.loop_lag_watch(interval=0.05, samples=3))
    await asyncio.sleep(0.01)  # the watch is now asleep
    # The input under test: a callback that holds the loop for 300 ms.
    asyncio.get_running_loop().call_soon(time.sleep, 0.3)
    await watch
    assert metric_value(LAG) >= 0.25
    # The gauge keeps the worst sample of its window (a scrape sees a stall between scrapes)
    # and a watch with a free loop reports far less.
    await loop_lag.loop_lag_watch(interval=0.05, samples=3)
    assert metric_value(LAG) < 0.25


async def test_the_middleware_starts_one_watch_per_loop():
    calls: list[str] = []

    async def app(scope, receive, send):
        calls.append(scope["type"])

    wrapped = loop_lag.LoopLagMiddleware(app)
    await wrapped({"type": "http"}, None, None)
    await wrapped({"type": "websocket"}, None, None)
    loop = asyncio.get_running_loop()
    task = loop_lag._monitors[loop]
    assert not task.done()
    assert calls == ["http", "websocket"]
    await wrapped({"type": "http"}, None, None)
    assert loop_lag._monitors[loop] is task  # still the one watch
    task.cancel()
    del loop_lag._monitors[loop]


class _Failing:
    def collect(self):
        raise ConnectionError("redis is down")


class _Extra:
    def collect(self):
        family = GaugeMetricFamily("monitor_test_extra", "A collector only the exporter adds.")
        family.add_metric([], 7)
        yield family


@pytest.fixture
def exporter() -> Iterator[str]:
    server = metrics_exporter_start(port=0, address="127.0.0.1", extra=[_Failing(), _Extra()])
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


def _refused(url: str, headers: dict[str, str]) -> tuple[int, dict]:
    with pytest.raises(urllib.error.HTTPError) as info:
        scrape(url, headers)
    return info.value.code, json.loads(info.value.read())


def test_the_exporter_serves_loopback_with_its_extra_collectors(exporter):
    text = scrape(exporter)
    assert scraped_value(text, "monitor_readings_ingested_total", path="ws") is not None
    assert scraped_value(text, "monitor_test_extra") == 7  # a failing collector is skipped


def test_the_exporter_refuses_relayed_requests_in_the_error_shape(exporter, settings):
    settings.METRICS_TOKEN = ""
    status, body = _refused(exporter, {"X-Forwarded-For": "203.0.113.9"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    settings.METRICS_TOKEN = "exporter-token"
    status, body = _refused(exporter, {"X-Forwarded-For": "203.0.113.9"})
    assert status == 401 and body["error"]["code"] == "not_authenticated"
    text = scrape(
        exporter, {"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer exporter-token"}
    )
    assert "monitor_readings_ingested_total" in text
