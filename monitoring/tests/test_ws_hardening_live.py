"""Against a real Daphne (``-m live``): a frame above the server's limit is closed with 1009
(not a dropped socket), and during a PostgreSQL outage the devices are told, a device that
connects is closed 4503, and everything is stored once the database is back (acked = stored)."""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager
from urllib.parse import urlparse, urlunparse

import pytest
import websockets
from django.db import connection

from monitoring.tests.test_ws_live import _first_readings, seed, stored_count
from testing.live import live_dashboard, live_device, postgres_test_url
from testing.processes import PYTHON, Daphne, ServerProcess, child_env
from testing.ws import reading

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]


async def test_frames_too_large_get_an_error_frame_or_close_1009(live_env, daphne_factory):
    data = await asyncio.to_thread(seed, live_env)
    server = await asyncio.to_thread(daphne_factory)
    ws = await live_device(server.url("/ws/devices/"), data["devices"][0]["token"])
    # Above WS_MAX_FRAME_BYTES (256 KiB), below Daphne's 1 MiB: an error frame, still open.
    await ws.send(json.dumps({"type": "ping", "pad": "x" * 300_000}))
    assert json.loads(await ws.recv())["error"]["code"] == "frame_too_large"
    await ws.send(json.dumps({"type": "reading", **reading(1)}))
    assert json.loads(await ws.recv()) == {"type": "ack", "seqs": [1]}
    # 2 MB: Daphne refuses it with a close frame the device can read.
    await ws.send(json.dumps({"type": "ping", "pad": "x" * 2_000_000}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None, "the TCP connection was dropped without a close frame"
    assert closed.value.rcvd.code == 1009


APPLICATION_NAME = "monitor_outage_server"


@contextmanager
def database_outage(database_url: str):
    """The server's PostgreSQL goes away: its connections are terminated and no new ones are
    allowed (the test's own connection stays) until the block ends."""
    import psycopg

    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    admin = urlunparse(parsed._replace(path="/postgres", query=""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            (name, APPLICATION_NAME),
        )
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


async def _until_frame(ws, kind: str, wait: float) -> dict:
    async with asyncio.timeout(wait):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


async def _resend_until_acked(ws, seq: int, wait: float) -> None:
    async with asyncio.timeout(wait):
        while True:
            await ws.send(json.dumps({"type": "reading", **reading(seq)}))
            frame = json.loads(await ws.recv())
            while frame["type"] not in ("ack", "error"):
                frame = json.loads(await ws.recv())
            if frame["type"] == "ack" and frame["seqs"] == [seq]:
                return
            assert frame["error"]["code"] == "storage_unavailable", frame
            await asyncio.sleep(0.5)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="takes PostgreSQL away from the server: runs on the PostgreSQL backend",
)
async def test_database_outage_is_told_to_devices_and_the_readings_are_resent(
    live_database_url, tmp_path
):
    database_url = postgres_test_url()
    assert database_url is not None
    env = child_env(f"{database_url}?application_name={APPLICATION_NAME}", tmp_path)
    data = await asyncio.to_thread(seed, env, 4)
    server = Daphne(env, tmp_path / "daphne.log")
    simulator: ServerProcess | None = None
    try:
        await asyncio.to_thread(server.wait_ready)
        url = server.url("/ws/devices/")
        watched = await live_device(url, data["devices"][0]["token"])
        await _resend_until_acked(watched, 1, wait=10)
        command = [PYTHON, "manage.py", "simulate", "--url", url, "--rate", "5"]
        command += ["--duration", "12", "--seed", "3", "--report", "-v", "2"]
        for device in data["devices"][1:]:
            command += ["--token", device["token"]]
        simulator = await asyncio.to_thread(
            ServerProcess, command, env, tmp_path / "simulator.log", echo_log=False
        )
        dashboard = await live_dashboard(server.url("/ws/dashboard/"), data["token"], data["ward"])
        await _first_readings(dashboard, simulator, wait=60)
        with database_outage(database_url):
            await watched.send(json.dumps({"type": "reading", **reading(2)}))
            error = await _until_frame(watched, "error", 15)
            assert error["error"]["code"] == "storage_unavailable", error
            assert error["seqs"] == [2]
            # A device that connects now cannot be authenticated: 4503, reconnect later.
            late = await live_device(url, data["devices"][0]["token"])
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(late.recv(), 15)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4503
            await asyncio.sleep(3)  # the simulator's devices keep producing meanwhile
        # Back: the device resends (safe: duplicates are acked and stored once).
        await _resend_until_acked(watched, 2, wait=30)
        returncode = await asyncio.to_thread(simulator.process.wait, 120)
        await watched.close()
        await dashboard.close()
    finally:
        if simulator is not None:
            simulator.stop()
        server.stop()
    assert returncode == 0, simulator.logs(3000)
    lines = simulator.output().decode().splitlines()
    report = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    context = f"{report}\n{simulator.logs(2000)}"
    assert report["fatal"] == [] and report["rejected"] == 0, context
    assert report["unacked"] == 0 and report["acked"] == report["sent"], context
    assert report["storage_errors"] > 0 or report["connects"] > 3, context  # told or closed
    assert report["resent"] > 0, context
    ids = [d["id"] for d in data["devices"]]
    assert await asyncio.to_thread(stored_count, env, ids) == report["sent"] + 2, context
