"""Against real Redis and real Daphne processes (``-m live``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from testing.live import live_dashboard, live_device
from testing.processes import PYTHON, ServerProcess, django_run
from testing.ws import reading

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

SEED = """
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, UserFactory, WardFactory
from rest_framework_simplejwt.tokens import AccessToken
place = PlaceFactory()
ward = WardFactory(place=place)
nurse = UserFactory(places=[place])
devices = []
for i in range({n}):
    patient = PatientFactory(ward=ward, monitoring_profile="obstetric" if i % 2 else "adult")
    d = DeviceFactory(patient=patient)
    devices.append({{"id": d.id, "token": d.token, "patient": patient.id,
                    "profile": patient.monitoring_profile}})
result = {{"ward": ward.id, "token": str(AccessToken.for_user(nurse)), "devices": devices}}
"""


def seed(env: dict[str, str], devices: int = 1) -> dict[str, Any]:
    """A place, a ward, a nurse (with an access token) and ``devices`` assigned devices."""
    return django_run(env, SEED.format(n=devices))


def stored_count(env: dict[str, str], device_ids: list[int]) -> int:
    return django_run(
        env,
        "from monitoring.models import Reading\n"
        f"result = Reading.objects.filter(device_id__in={device_ids!r}).count()",
    )


async def _collect_readings(ws, expected: set[int], wait: float) -> list[int]:
    seen: list[int] = []
    async with asyncio.timeout(wait):
        while not expected.issubset(seen):
            frame = json.loads(await ws.recv())
            if frame["type"] == "readings":
                seen.extend(item["seq"] for item in frame["items"])
    return seen


async def _first_readings(ws, simulator: ServerProcess, wait: float) -> None:
    """Wait for the dashboard's first ``readings`` frame; if none comes, fail with what the
    simulator logged (whether it is still running, and why it did not connect)."""
    try:
        async with asyncio.timeout(wait):
            while json.loads(await ws.recv())["type"] != "readings":
                pass
    except TimeoutError:
        state = (
            "running"
            if simulator.process.poll() is None
            else f"exited {simulator.process.returncode}"
        )
        raise AssertionError(
            f"no readings within {wait} s; simulator {state}:\n{simulator.logs(3000)}"
        ) from None


async def test_idle_dashboard_stays_connected_and_still_receives(live_env, daphne_factory):
    data = await asyncio.to_thread(seed, live_env)
    server = await asyncio.to_thread(daphne_factory)
    dashboard = await live_dashboard(server.url("/ws/dashboard/"), data["token"], data["ward"])
    await asyncio.sleep(31)  # longer than any idle timeout that has bitten us (redis-py 8: 5 s)
    device = await live_device(server.url("/ws/devices/"), data["devices"][0]["token"])
    await device.send(json.dumps({"type": "reading", **reading(1)}))
    assert json.loads(await device.recv()) == {"type": "ack", "seqs": [1]}
    assert await _collect_readings(dashboard, {1}, wait=10) == [1]
    await dashboard.close()
    await device.close()


async def test_two_servers_share_redis_and_every_reading_is_delivered(live_env, daphne_factory):
    data = await asyncio.to_thread(seed, live_env, 3)
    ingest = await asyncio.to_thread(daphne_factory)
    watch = await asyncio.to_thread(daphne_factory)
    dashboard = await live_dashboard(watch.url("/ws/dashboard/"), data["token"], data["ward"])
    devices = [await live_device(ingest.url("/ws/devices/"), d["token"]) for d in data["devices"]]
    per_device = 150

    async def stream(ws, offset: int) -> set[int]:
        acked: set[int] = set()
        seqs = list(range(offset + 1, offset + per_device + 1))
        # Mixed: single frames and batches, as fast as the socket takes them.
        for start in range(0, per_device, 10):
            chunk = seqs[start : start + 10]
            if start % 20:
                await ws.send(
                    json.dumps({"type": "readings", "items": [reading(s) for s in chunk]})
                )
            else:
                for s in chunk:
                    await ws.send(json.dumps({"type": "reading", **reading(s)}))
        async with asyncio.timeout(30):
            while len(acked) < per_device:
                frame = json.loads(await ws.recv())
                assert frame["type"] == "ack", frame
                acked.update(frame["seqs"])
        return acked

    # Seqs are per device; distinct ranges make the dashboard's tally unambiguous.
    acked = await asyncio.gather(*(stream(ws, i * 10_000) for i, ws in enumerate(devices)))
    expected = {s for a in acked for s in a}
    assert len(expected) == per_device * len(devices)
    seen = await _collect_readings(dashboard, expected, wait=30)
    assert sorted(seen) == sorted(expected)  # every reading, exactly once
    ids = [d["id"] for d in data["devices"]]
    assert await asyncio.to_thread(stored_count, live_env, ids) == len(expected)
    for ws in [dashboard, *devices]:
        await ws.close()


async def test_simulator_counts_add_up_across_a_server_crash(live_env, daphne_factory, tmp_path):
    data = await asyncio.to_thread(seed, live_env, 4)
    server = await asyncio.to_thread(daphne_factory)
    port = server.port
    command = [PYTHON, "manage.py", "simulate", "--url", server.url("/ws/devices/")]
    command += ["--rate", "10", "--duration", "8", "--seed", "7", "--report", "-v", "2"]
    command += [
        "--episode-every",
        "5",
        "--adult-episode-seconds",
        "2",
        "--fetal-episode-seconds",
        "2",
    ]
    for device in data["devices"]:
        command.append(f"--token={device['token']}")  # a token may begin with "-"
    log = tmp_path / "simulator.log"
    simulator = await asyncio.to_thread(ServerProcess, command, live_env, log, echo_log=False)
    try:
        # Once readings flow (the simulator is up), the server dies mid-stream; unacked
        # readings must be resent to its replacement.
        dashboard = await live_dashboard(server.url("/ws/dashboard/"), data["token"], data["ward"])
        await _first_readings(dashboard, simulator, wait=60)
        await asyncio.sleep(1)
        # The server dies mid-stream; unacked readings must be resent to its replacement.
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(daphne_factory, port)
        returncode = await asyncio.to_thread(simulator.process.wait, 90)
    finally:
        simulator.stop()  # also when the test failed before the simulator ended
    assert returncode == 0, simulator.logs(2000)
    # Its log holds stdout and stderr: the report is the last JSON line.
    lines = simulator.output().decode().splitlines()
    report = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    context = f"{report}\n{simulator.logs(1500)}"
    assert report["fatal"] == [] and report["rejected"] == 0, context
    assert report["sent"] >= 4 * 10 * 6, context
    assert report["unacked"] == 0, context
    assert report["acked"] == report["sent"], context
    assert report["connects"] > 4, context  # the devices reconnected after the crash
    ids = [d["id"] for d in data["devices"]]
    assert await asyncio.to_thread(stored_count, live_env, ids) == report["sent"], context
