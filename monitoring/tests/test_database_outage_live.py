"""PostgreSQL goes down under a real Daphne (``-m live``) and comes back: a PostgreSQL of the
test's own (testing.postgres) is stopped (``pg_ctl stop -m immediate``, as a crash, or ``-m
fast``) and started again while devices stream over real WebSockets and clients call the REST
API.

- Devices are told: a reading that cannot be stored gets the error frame
  ``storage_unavailable`` (not acked), a device that connects meanwhile is closed 4503.
- REST answers 503 ``storage_unavailable`` in the contract's error shape (never a 500).
- Once the database is back, the devices resend and everything acked is stored exactly once:
  acked = stored, nothing lost, nothing twice.

Runs on either test backend: the server's database is this PostgreSQL, not the test run's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets
from django.utils import timezone

from monitoring.tests.test_ws_live import SEED
from testing.live import live_device
from testing.postgres import LocalPostgres, local_postgres, postgres_bin
from testing.processes import PYTHON, Daphne, ServerProcess, child_env, django_run, manage
from testing.ws import reading

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(postgres_bin() is None, reason="needs the PostgreSQL binaries (initdb)"),
    pytest.mark.timeout(300),
]

DEVICES = 4  # one driven by the test, three by the simulator


@pytest.fixture(scope="module")
def outage_postgres(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalPostgres, dict[str, str]]]:
    """A PostgreSQL of this module's own with the schema migrated, and the environment of a
    server process that uses it."""
    with local_postgres() as postgres:
        url = postgres.create_database("monitor")
        env = child_env(url, tmp_path_factory.mktemp("outage"))
        manage(env, "migrate", "--noinput", "-v", "0")
        yield postgres, env


@pytest.fixture
def outage_server(
    outage_postgres, tmp_path: Path
) -> Iterator[tuple[LocalPostgres, dict[str, str], Daphne, dict[str, Any]]]:
    """A Daphne on that PostgreSQL and freshly seeded data (a ward, a nurse, DEVICES devices)."""
    postgres, env = outage_postgres
    if not postgres.running():
        postgres.start()
    data = django_run(env, SEED.format(n=DEVICES))
    server = Daphne(env, tmp_path / "daphne.log").wait_ready()
    try:
        yield postgres, env, server, data
    finally:
        server.stop()
        if not postgres.running():
            postgres.start()
        manage(env, "flush", "--noinput", timeout=60)  # the next test seeds the same names


def _stored(env: dict[str, str], device_ids: list[int]) -> dict[str, int]:
    return django_run(
        env,
        "from monitoring.models import Reading\n"
        f"rows = Reading.objects.filter(device_id__in={device_ids!r})\n"
        "result = {'rows': rows.count(),"
        " 'distinct': rows.values('device_id', 'seq').distinct().count()}",
    )


def _rest_reading(seq: int) -> dict[str, Any]:
    recorded = (timezone.now() - timedelta(seconds=1)).isoformat()
    return {"metric": "heart_rate", "bpm": 80, "recorded_at": recorded, "seq": seq}


def test_rest_answers_503_in_the_error_shape_while_the_database_is_down(outage_server):
    postgres, env, server, data = outage_server
    base = server.url("", scheme="http")
    device = {"Authorization": f"Device {data['devices'][0]['token']}"}
    nurse = {"Authorization": f"Bearer {data['token']}"}
    assert (
        requests.post(f"{base}/api/records/", json=_rest_reading(1), headers=device).status_code
        == 201
    )

    postgres.stop("fast")
    calls = [
        ("post", "/api/records/", device, _rest_reading(2)),  # a device's reading
        ("get", "/api/patients/", nurse, None),  # a clinician's list
        ("get", f"/api/records/{data['devices'][0]['patient']}/", nurse, None),
    ]
    for method, path, headers, body in calls:
        response = requests.request(method, f"{base}{path}", json=body, headers=headers, timeout=30)
        assert response.status_code == 503, (path, response.status_code, response.text[:300])
        assert response.headers["Content-Type"] == "application/json", path
        assert response.headers["Retry-After"].isdigit(), path
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}, error
        assert error["code"] == "storage_unavailable", error

    postgres.start()
    # Back: the client sends again and it is stored (the server reconnects on its own; a
    # request on a connection the restart cut may still hear one more 503).
    statuses = []
    for _ in range(10):
        response = requests.post(f"{base}/api/records/", json=_rest_reading(2), headers=device)
        statuses.append(response.status_code)
        if response.status_code == 201:
            break
    assert statuses[-1] == 201 and set(statuses[:-1]) <= {503}, statuses
    assert _stored(env, [data["devices"][0]["id"]]) == {"rows": 2, "distinct": 2}


async def _until_frame(ws, kind: str, wait: float) -> dict:
    async with asyncio.timeout(wait):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


async def _resend_until_acked(ws, seq: int, wait: float) -> int:
    """Send reading ``seq`` until it is acked, as a device does (each ``storage_unavailable``
    answer: resend); returns how many times it was sent again."""
    resent = 0
    async with asyncio.timeout(wait):
        while True:
            await ws.send(json.dumps({"type": "reading", **reading(seq)}))
            frame = json.loads(await ws.recv())
            while frame["type"] not in ("ack", "error"):
                frame = json.loads(await ws.recv())
            if frame["type"] == "ack" and frame["seqs"] == [seq]:
                return resent
            assert frame["error"]["code"] == "storage_unavailable", frame
            resent += 1
            await asyncio.sleep(0.5)  # the device's back-off before it sends again


def _simulator_told(simulator: ServerProcess) -> bool:
    """The simulator's devices heard of the outage (error frames or refused connections) at
    least once per device: the outage lasted while they kept producing."""
    log = simulator.output()
    told = log.count(b"storage unavailable") + log.count(b"reconnecting")
    return told >= DEVICES - 1


@pytest.mark.parametrize("mode", ["immediate", "fast"])
async def test_devices_are_told_of_a_database_outage_and_nothing_acked_is_lost(
    outage_server, tmp_path, mode
):
    postgres, env, server, data = outage_server
    url = server.url("/ws/devices/")
    watched = await live_device(url, data["devices"][0]["token"])
    assert await _resend_until_acked(watched, 1, wait=10) == 0
    command = [PYTHON, "manage.py", "simulate", "--url", url, "--rate", "5"]
    command += ["--duration", "14", "--seed", "3", "--report", "-v", "2"]
    for device in data["devices"][1:]:
        command.append(f"--token={device['token']}")  # a token may begin with "-"
    simulator = await asyncio.to_thread(
        ServerProcess, command, env, tmp_path / "simulator.log", echo_log=False
    )
    try:
        ids = [d["id"] for d in data["devices"]]
        await asyncio.to_thread(
            simulator.wait_until, lambda: _stored(env, ids[1:])["rows"] >= 15, 60, "streaming"
        )
        await asyncio.to_thread(postgres.stop, mode)
        # The watched device is told its reading was not stored (and is not acked).
        await watched.send(json.dumps({"type": "reading", **reading(2)}))
        error = await _until_frame(watched, "error", 15)
        assert error["error"]["code"] == "storage_unavailable", error
        assert error["seqs"] == [2]
        # A device that connects now cannot be authenticated: closed 4503, reconnect later.
        late = await live_device(url, data["devices"][0]["token"])
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(late.recv(), 15)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4503
        # The simulator's devices go on producing into the outage until they too were told.
        await asyncio.to_thread(
            simulator.wait_until, lambda: _simulator_told(simulator), 30, "told"
        )
        await asyncio.to_thread(postgres.start)
        # Back: the device resends (safe: a duplicate is acked again and stored once).
        await _resend_until_acked(watched, 2, wait=30)
        returncode = await asyncio.to_thread(simulator.process.wait, 120)
        await watched.close()
    finally:
        simulator.stop()
    assert returncode == 0, simulator.logs(3000)
    lines = simulator.output().decode().splitlines()
    report = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    stored = _stored(env, ids)
    context = f"{report}\n{stored}\n{simulator.logs(2000)}"
    print(f"outage ({mode}): simulator {json.dumps(report)}; stored {stored}")
    assert report["fatal"] == [] and report["rejected"] == 0, context
    # Every reading the simulator made was acked in the end, after resends.
    assert report["unacked"] == 0 and report["acked"] == report["sent"], context
    assert report["storage_errors"] > 0 or report["connects"] > 3, context  # told or closed
    assert report["resent"] > 0, context
    # acked = stored: each acked reading is in the database, and none twice.
    assert stored == {"rows": report["sent"] + 2, "distinct": report["sent"] + 2}, context
