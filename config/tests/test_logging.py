"""LOG_FORMAT=json in real processes: Daphne (with the access log and a device connection),
the Celery worker and a management command write their log lines as JSON objects."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import urllib.request
from typing import Any

import pytest
from celery.signals import task_postrun, task_prerun

from common.logs import log_context_ids
from testing.live import live_device
from testing.processes import PYTHON, ROOT, CeleryWorker, Daphne, Evaluator, django_run

# The text format's first line; no line of a JSON-logging process may look like it.
TEXT_LINE = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", re.MULTILINE)
# Daphne's own access log (NCSA style, on stdout).
DAPHNE_ACCESS_LINE = re.compile(r'^\S+ - - \[[^\]]+\] "')

SEED_DEVICE = """
from testing.factories import DeviceFactory, PatientFactory
patient = PatientFactory()
device = DeviceFactory(patient=patient)
result = {"device": device.id, "patient": patient.id, "token": device.token}
"""


def json_lines(output: bytes, *, skip: re.Pattern[str] | None = None) -> list[dict[str, Any]]:
    """Every line of ``output`` as JSON (other than ``skip``); fails on a line that is not."""
    assert not TEXT_LINE.search(output), output.decode(errors="replace")[-2000:]
    parsed = []
    for line in output.decode().splitlines():
        if line.strip() and not (skip and skip.match(line)):
            parsed.append(json.loads(line))
    return parsed


def logged(lines: list[dict[str, Any]], logger: str, message: str) -> dict[str, Any]:
    found = [line for line in lines if line["logger"] == logger and message in line["message"]]
    assert found, f"no {logger} line with {message!r} in {lines}"
    return found[-1]


def request_id_of(url: str) -> str:
    """GET ``url`` as a load balancer that names the request; the id the server returns."""
    request = urllib.request.Request(url, headers={"X-Request-ID": "lb-trace-1"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["X-Request-ID"])


def test_a_bad_log_format_stops_the_process_with_the_reason():
    done = subprocess.run(
        [PYTHON, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "LOG_FORMAT must be text or json" in done.stderr


def test_a_celery_task_binds_its_id_and_name_while_it_runs():
    from notifications.tasks import alert_event_notify as task

    task_prerun.send(sender=task, task_id="t-1", task=task, args=(), kwargs={})
    during = log_context_ids()
    task_postrun.send(sender=task, task_id="t-1", task=task, args=(), kwargs={}, retval=None)
    assert during == {"task_id": "t-1", "task_name": "notifications.tasks.alert_event_notify"}
    assert log_context_ids() == {}


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
async def test_daphne_logs_json_with_the_request_and_the_device(live_env, tmp_path):
    env = {**live_env, "LOG_FORMAT": "json"}
    seeded = django_run(env, SEED_DEVICE)
    server = Daphne(env, tmp_path / "daphne.log")
    try:
        server.wait_ready()
        echoed = await asyncio.to_thread(request_id_of, server.url("/healthz", "http"))
        assert echoed == "lb-trace-1"
        ws = await live_device(server.url("/ws/devices/"), seeded["token"])
        await ws.close()
        server.wait_for(rb"disconnected \(close code", 30)
    finally:
        server.stop()

    lines = json_lines(server.output(), skip=DAPHNE_ACCESS_LINE)
    assert all({"timestamp", "level", "logger", "message"} <= set(line) for line in lines)
    logged(lines, "daphne.server", "Listening on TCP address")
    access = logged(lines, "access", "GET /healthz 200")
    assert access["request_id"] == "lb-trace-1"
    assert access["status"] == 200 and access["path"] == "/healthz"
    for message in ("connected", "disconnected"):
        line = logged(lines, "monitoring.consumers.device", message)
        assert line["device_id"] == seeded["device"]
        assert line["patient_id"] == seeded["patient"]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_the_celery_worker_and_the_evaluator_log_json(live_env, tmp_path):
    env = {**live_env, "LOG_FORMAT": "json"}
    worker = CeleryWorker(env, tmp_path / "worker.log")
    evaluator = Evaluator(env, tmp_path / "evaluator.log")
    try:
        worker.wait_ready()
        evaluator.wait_ready()
    finally:
        worker.stop()
        evaluator.stop()

    # The worker's start-up banner is printed, not logged: every logged line is JSON.
    worker_lines = [
        json.loads(line) for line in worker.output().decode().splitlines() if line.startswith("{")
    ]
    assert not TEXT_LINE.search(worker.output())
    logged(worker_lines, "celery.apps.worker", "ready.")
    evaluator_lines = json_lines(evaluator.output())
    logged(evaluator_lines, "alerts.evaluator_process", "starting")
    logged(evaluator_lines, "alerts.stream_reader", "owns partitions")
