"""Every process type exports its metrics, against real processes (``-m live``): a Daphne web
process on GET /metrics, the alarm evaluator and the Celery worker (prefork pool, multiprocess
mode) on their exporter ports."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.net import free_port
from testing.live import live_device, until
from testing.metrics import scrape, scraped_value
from testing.processes import CeleryWorker, Daphne, Evaluator, django_run

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

SEED = """
from testing.factories import DeviceFactory, PatientFactory
patient = PatientFactory(monitoring_profile="adult")
device = DeviceFactory(patient=patient)
result = {"device": device.id, "token": device.token, "patient": patient.id}
"""

STORE = """
from django.utils import timezone
from monitoring.readings import ReadingIn, readings_store
from monitoring.stream.backlog import readings_queue
now = timezone.now()
stored = readings_store(
    readings=[ReadingIn({patient}, {device}, "heart_rate", 80, now, seq) for seq in range(1, 6)],
    queue=readings_queue,
)
result = len(stored)
"""


def _reading(seq: int) -> dict:
    return {
        "seq": seq,
        "metric": "heart_rate",
        "bpm": 80,
        "recorded_at": datetime.now(UTC).isoformat(),
    }


def _value(url: str, name: str, **labels: str) -> float:
    return scraped_value(scrape(url), name, **labels) or 0.0


async def test_a_web_process_counts_websocket_and_rest_readings(live_env, daphne_factory):
    data = await asyncio.to_thread(django_run, live_env, SEED)
    server: Daphne = await asyncio.to_thread(daphne_factory)
    metrics_url = server.url("/metrics", "http")

    device = await live_device(server.url("/ws/devices/"), data["token"])
    await device.send(json.dumps({"type": "readings", "items": [_reading(s) for s in (1, 2, 3)]}))
    while json.loads(await device.recv())["type"] != "ack":
        pass
    text = await asyncio.to_thread(scrape, metrics_url)
    assert scraped_value(text, "monitor_readings_ingested_total", path="ws") == 3
    assert scraped_value(text, "monitor_ws_connections", kind="device") == 1
    assert (scraped_value(text, "monitor_ingest_flush_seconds_count") or 0) >= 1
    assert (scraped_value(text, "monitor_ingest_ack_seconds_count") or 0) >= 1
    assert scraped_value(text, "monitor_event_loop_lag_seconds") is not None
    assert (scraped_value(text, "process_resident_memory_bytes") or 0) > 0

    request = urllib.request.Request(
        server.url("/api/records/", "http"),
        data=json.dumps([_reading(4), _reading(5)]).encode(),
        headers={"Authorization": f"Device {data['token']}", "Content-Type": "application/json"},
    )
    await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
    assert (
        await asyncio.to_thread(_value, metrics_url, "monitor_readings_ingested_total", path="rest")
        == 2
    )

    await device.close()
    await until(
        lambda: _value(metrics_url, "monitor_ws_connections", kind="device") == 0, 10, "disconnect"
    )


def test_the_evaluator_exports_its_batches_and_the_stream_backlog(live_env, tmp_path: Path):
    data = django_run(live_env, SEED)
    port = free_port()
    evaluator = Evaluator(
        {**live_env, "METRICS_PORT": str(port)}, tmp_path / "evaluator.log", "--block-ms", "200"
    )
    try:
        evaluator.wait_ready()
        assert django_run(live_env, STORE.format(**data)) == 5
        url = f"http://127.0.0.1:{port}/metrics"
        evaluator.wait_until(
            lambda: _value(url, "monitor_evaluator_readings_total") >= 5, 30, "5 readings evaluated"
        )
        text = scrape(url)
        partitions = int(
            django_run(
                live_env,
                "from django.conf import settings\nresult = settings.READINGS_STREAM_PARTITIONS",
            )
        )
        owned = [
            scraped_value(text, "monitor_readings_stream_partition_owned", partition=str(p))
            for p in range(partitions)
        ]
        assert owned == [1.0] * partitions  # the only evaluator holds every partition
        assert (
            scraped_value(
                text,
                "monitor_readings_awaiting_evaluation",
                partition=str(data["patient"] % partitions),
            )
            == 0
        )
        assert (scraped_value(text, "monitor_evaluation_delay_seconds_count") or 0) >= 1
    finally:
        evaluator.stop()


def test_the_celery_worker_exports_what_its_pool_processes_count(live_env, tmp_path: Path):
    port = free_port()
    worker = CeleryWorker(
        {**live_env, "METRICS_PORT": str(port)}, tmp_path / "worker.log", name="metrics-live"
    )
    try:
        worker.wait_ready()
        url = f"http://127.0.0.1:{port}/metrics"
        worker.wait_until(lambda: _exporter_up(url), 30, "the exporter answering")
        succeeded = {"task": "notifications.tasks.alerts_delivery_sweep", "state": "succeeded"}
        assert _value(url, "monitor_celery_tasks_total", **succeeded) == 0
        django_run(
            live_env,
            "from notifications.tasks import alerts_delivery_sweep\n"
            "alerts_delivery_sweep.delay()\nresult = True",
        )
        # The task ran in a pool process; the main process's exporter reports it.
        worker.wait_until(
            lambda: _value(url, "monitor_celery_tasks_total", **succeeded) == 1,
            30,
            "the task counted",
        )
        assert scraped_value(scrape(url), "monitor_celery_queue_length", queue="celery") == 0
    finally:
        worker.stop()
    assert "prometheus_client was imported before" not in worker.logs(100_000)


def _exporter_up(url: str) -> bool:
    try:
        scrape(url, timeout=2)
    except OSError:
        return False
    return True
