"""A Redis outage against real processes (``-m live``): Daphne and the alarm evaluator on a
Redis of the test's own, which the test kills mid-stream and starts again (empty, as a Redis
without persistence comes back), with real WebSocket clients.

During the outage the devices keep getting acks and every acked reading is stored, a device
can connect, staff can log in, readiness says degraded and dashboards are told; afterwards the
dashboards get ``live.restored`` and a fresh snapshot, and a bradycardia episode streamed
during the outage raises its alert (the readings deferred to the backlog reach the evaluator),
which the dashboard hears of.
The run's figures are printed as one JSON line (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from testing.live import live_dashboard, live_device, until
from testing.processes import Daphne, Evaluator, child_env, django_run
from testing.redis_outage import StoppableRedis
from testing.ws import episode, reading

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]

DEVICES = 20  # streaming through the outage; one more connects during it
PERIOD = 0.25  # seconds between a device's readings (4 readings/s each)
OUTAGE_SECONDS = 10.0
PASSWORD = "Str0ng-Passw0rd!"  # testing.factories' default

SEED = """
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, UserFactory, WardFactory
from rest_framework_simplejwt.tokens import AccessToken
place = PlaceFactory()
ward = WardFactory(place=place)
nurse = UserFactory(places=[place])
devices = []
for i in range(N):
    patient = PatientFactory(ward=ward, monitoring_profile="adult")
    d = DeviceFactory(patient=patient)
    devices.append({"id": d.id, "token": d.token, "patient": patient.id})
result = {"ward": ward.id, "token": str(AccessToken.for_user(nurse)), "email": nurse.email,
          "devices": devices}
"""

STORED = """
from monitoring.models import Reading
result = [list(row) for row in Reading.objects.filter(device_id__in=IDS).values_list("device_id", "seq")]
"""

ALERTS = """
from alerts.models import Alert
result = [[a.kind, a.state] for a in Alert.objects.filter(patient_id=PATIENT)]
"""


@dataclass
class Device:
    id: int
    ws: ClientConnection
    seq: int = 0
    sent: list[tuple[int, float]] = field(default_factory=list)  # (seq, when sent)
    acked: dict[int, float] = field(default_factory=dict)  # seq -> when acked
    errors: list[dict] = field(default_factory=list)

    async def send(self, items: list[dict[str, Any]]) -> None:
        """Send readings (one frame) and wait for their ack."""
        now = time.monotonic()
        self.sent += [(item["seq"], now) for item in items]
        frame: dict[str, Any] = (
            {"type": "reading", **items[0]}
            if len(items) == 1
            else {"type": "readings", "items": items}
        )
        await self.ws.send(json.dumps(frame))
        wanted = {item["seq"] for item in items}
        async with asyncio.timeout(10):
            while wanted - set(self.acked):
                reply = json.loads(await self.ws.recv())
                if reply["type"] == "ack":
                    at = time.monotonic()
                    self.acked.update(dict.fromkeys(reply["seqs"], at))
                elif reply["type"] == "error":
                    self.errors.append(reply)
                    return

    async def stream(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.seq += 1
            await self.send([reading(self.seq)])
            await asyncio.sleep(PERIOD)


async def _frames(ws: ClientConnection, seen: list[tuple[str, float, dict]]) -> None:
    while True:
        frame = json.loads(await ws.recv())
        seen.append((frame["type"], time.monotonic(), frame))


def _http(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


async def _poll(check: Any, wait: float, what: str) -> None:
    """Wait until ``check()`` (blocking: run in a thread, the clients go on) is truthy."""
    deadline = time.monotonic() + wait
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


def _largest_gap(stamps: list[float], window: tuple[float, float]) -> float:
    inside = sorted([window[0], *(s for s in stamps if window[0] <= s < window[1]), window[1]])
    return max(b - a for a, b in itertools.pairwise(inside))


async def test_a_redis_outage_keeps_ingest_going_and_everything_catches_up(
    live_database_url, tmp_path
):
    redis = StoppableRedis(tmp_path / "redis").start()
    env = child_env(live_database_url, tmp_path, REDIS_URL=redis.url)
    data = await asyncio.to_thread(django_run, env, f"N = {DEVICES + 1}\n" + SEED)
    server = Daphne(env, tmp_path / "daphne.log")
    evaluator = Evaluator(env, tmp_path / "evaluator.log", "--consumer", "ev", "--block-ms", "200")
    tasks: list[asyncio.Task] = []
    try:
        await asyncio.to_thread(server.wait_ready)
        await asyncio.to_thread(evaluator.wait_ready)
        http = server.url("", scheme="http")
        dashboard = await live_dashboard(server.url("/ws/dashboard/"), data["token"], data["ward"])
        frames: list[tuple[str, float, dict]] = []
        tasks.append(asyncio.create_task(_frames(dashboard, frames)))
        devices = [
            Device(d["id"], await live_device(server.url("/ws/devices/"), d["token"]))
            for d in data["devices"][:DEVICES]
        ]
        brady = devices[0]  # streams 35 bpm during the outage instead of 80
        stop = asyncio.Event()
        tasks += [asyncio.create_task(d.stream(stop)) for d in devices[1:]]
        await until(lambda: any(kind == "readings" for kind, _, _ in frames), 30, "live readings")
        assert (await asyncio.to_thread(_http, f"{http}/readyz"))[1]["status"] == "ok"

        # --- Redis goes away mid-stream
        redis.stop()
        outage_start = time.monotonic()
        brady.seq = 100
        await brady.send(episode(35, 20, first_seq=brady.seq + 1))  # 21 readings, 20 s of them
        brady.seq += 21
        late = Device(
            data["devices"][DEVICES]["id"],
            await live_device(server.url("/ws/devices/"), data["devices"][DEVICES]["token"]),
        )
        await late.send([reading(1)])
        login_status, login = await asyncio.to_thread(
            _http, f"{http}/api/auth/login/", {"email": data["email"], "password": PASSWORD}
        )
        ready_status, ready = await asyncio.to_thread(_http, f"{http}/readyz")
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_start)))
        outage_end = time.monotonic()

        # --- Redis is back (empty)
        redis.start()
        await until(
            lambda: any(kind == "live.restored" for kind, _, _ in frames), 30, "live.restored"
        )
        restored_at = next(at for kind, at, _ in frames if kind == "live.restored")
        await until(
            lambda: any(k == "snapshot" and at >= restored_at for k, at, _ in frames), 15, "resync"
        )
        patient = data["devices"][0]["patient"]

        # The dashboard hears of the alert that the outage's readings raise (the backlog reached
        # the evaluator): as an alert frame, or, when the evaluator raised it before this
        # process's live link was subscribed again, in the resynchronising snapshot.
        def outage_alert(kind: str, at: float, frame: dict) -> bool:
            if kind == "alert":
                return frame["alert"]["kind"] == "bradycardia"
            return (
                kind == "snapshot"
                and at >= restored_at
                and any(
                    alert["kind"] == "bradycardia"
                    for patient in frame["patients"]
                    for alert in patient.get("alerts", [])
                )
            )

        await until(
            lambda: any(outage_alert(k, at, f) for k, at, f in frames),
            60,
            "the bradycardia alert of the outage's readings on the dashboard",
        )
        alert_at = next(at for k, at, f in frames if outage_alert(k, at, f))
        await _poll(lambda: _http(f"{http}/readyz")[1]["status"] == "ok", 60, "readiness ok")
        ready_again_at = time.monotonic()
        # Live readings again on the dashboard, after the resync.
        await until(
            lambda: any(k == "readings" and at > ready_again_at for k, at, _ in frames),
            15,
            "live readings after the outage",
        )
        stop.set()
        await asyncio.gather(*tasks[1:])
        for device in [*devices, late]:
            await device.ws.close()
        await dashboard.close()
    finally:
        for task in tasks:
            task.cancel()
        server.stop()
        evaluator.stop()
        redis.stop()

    everyone = [*devices, late]
    ids = [d.id for d in everyone]
    stored = {
        tuple(row) for row in await asyncio.to_thread(django_run, env, f"IDS = {ids}\n" + STORED)
    }
    acked = {(d.id, seq) for d in everyone for seq in d.acked}
    sent = {(d.id, seq) for d in everyone for seq, _ in d.sent}
    window = (outage_start, outage_end)
    sent_during = {
        (d.id, seq) for d in everyone for seq, at in d.sent if window[0] <= at < window[1]
    }
    acked_during = [at for d in everyone for at in d.acked.values() if window[0] <= at < window[1]]
    largest_gap = _largest_gap(acked_during, window)
    figures: dict[str, Any] = {
        "devices": len(everyone),
        "outage_seconds": round(outage_end - outage_start, 1),
        "sent_during_outage": len(sent_during),
        "acked_during_outage": len(acked_during),
        "stored_of_sent_during_outage": len(sent_during & stored),
        "stored_of_acked": len(acked & stored),
        "largest_ack_gap_during_outage_s": round(largest_gap, 2),
        "errors": sum(len(d.errors) for d in everyone),
        "dashboard_told_degraded_after_s": round(
            next(at for k, at, _ in frames if k == "live.degraded") - outage_start, 2
        ),
        "restored_after_redis_start_s": round(restored_at - outage_end, 2),
        "alert_after_redis_start_s": round(alert_at - outage_end, 2),
        "ready_ok_after_redis_start_s": round(ready_again_at - outage_end, 2),
        "login_status": login_status,
        "readyz_during_outage": [ready_status, ready.get("status"), ready.get("degraded")],
    }
    print("REDIS-OUTAGE-FIGURES " + json.dumps(figures))
    context = f"{figures}\n{server.logs(3000)}"
    assert figures["errors"] == 0, [d.errors for d in everyone]
    assert acked == sent, context  # every reading acked, also during the outage
    assert acked <= stored, context  # acked = stored
    assert sent_during and sent_during <= stored, context
    assert len(acked_during) > 0 and largest_gap < 2.0, context
    assert late.acked, "a device connecting during the outage streams"
    assert login_status == 200 and login["access"], login
    assert ready_status == 200 and ready["status"] == "degraded", ready
    assert "redis" in ready["degraded"] and ready["checks"]["database"] == "ok", ready
    kinds = [k for k, _, _ in frames]
    assert kinds.index("live.degraded") < kinds.index("live.restored"), kinds
    assert [kind for kind, _ in _alerts(env, patient)] == ["bradycardia"]


def _alerts(env: dict[str, str], patient: int) -> list:
    return django_run(env, f"PATIENT = {patient}\n" + ALERTS)
