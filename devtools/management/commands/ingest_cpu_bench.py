"""``manage.py ingest_cpu_bench``: the web process's CPU per 1,000 readings on the device path,
measured in one process (docs/performance.md, series M).

A busy machine moves wall-clock latency a lot and a process's CPU time little, so this counts
CPU, not time. It creates the test database of the configured one (``TEST_DATABASE_NAME``; on
SQLite an in-memory database), migrates it, makes the bench fixture (a place, wards, one
patient and device per device, a nurse), connects the devices and the dashboards to the real
ASGI application as Daphne would hand them their frames (in process, no sockets: Daphne's
and autobahn's frame handling are not in the figure), and then, round after round, sends one frame
of ``--per-frame`` readings from every device and waits for every ack. Everything of the
server runs: frame decoding, parsing, the ingest batcher, the INSERT, the readings stream
(Redis), the live fan-out to the dashboards (this process's and one PUBLISH per ward),
presence. Prints ``time.process_time()`` (every thread of the process: the storing thread
too) per 1,000 readings over the measured rounds; ``--profile`` adds cProfile's top functions.

Examples::

    REDIS_URL=redis://127.0.0.1:6379/8 manage.py ingest_cpu_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x TEST_DATABASE_NAME=bench_ingest \\
        REDIS_URL=redis://127.0.0.1:6379/8 manage.py ingest_cpu_bench --rounds 200
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import logging
import pstats
import time
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, connections


class Command(BaseCommand):
    help = "CPU time of the web process per 1,000 readings on the device WebSocket path."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--devices", type=int, default=100)
        parser.add_argument("--per-frame", type=int, default=4, help="readings per frame")
        parser.add_argument("--rounds", type=int, default=100, help="measured rounds")
        parser.add_argument("--warmup", type=int, default=20, help="rounds before measuring")
        parser.add_argument("--wards", type=int, default=10)
        parser.add_argument("--dashboards", type=int, default=20, help="ward subscriptions")
        parser.add_argument(
            "--profile", type=int, default=0, help="print cProfile's top N functions"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("monitoring").setLevel(logging.WARNING)  # a line per connection
        old_name = connection.settings_dict["NAME"]
        test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            from devtools.bench.fixture import fixture_create

            fixture = fixture_create(devices=options["devices"], wards=options["wards"])
            # The ORM's connection of this thread is not used again by the event loop.
            result = asyncio.run(_Bench(fixture, options).run())
        finally:
            connection.close()
            connection.creation.destroy_test_db(old_name, verbosity=0)
        self.stdout.write(f"database {connection.vendor} ({test_name})")
        self.stdout.write(json.dumps(result, indent=2))


class _Socket:
    """One WebSocket connection to the ASGI application, as a server hands it frames (no
    socket; channels' testing communicator patches with ``mock`` on every message, which
    would cost more than what is measured)."""

    def __init__(self, application: Any, path: str, headers: list | None = None) -> None:
        scope = {
            "type": "websocket",
            "path": path,
            "query_string": b"",
            "headers": headers or [],
            "subprotocols": [],
        }
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.texts: list[str] = []
        self.acked = 0
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(application(scope, self.inbox.get, self._sent))

    async def _sent(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is None:
            assert message["type"] in ("websocket.accept", "websocket.close"), message
            return
        if text.startswith(_ACK):
            self.acked += text.count(",")  # '{"type":"ack","seqs":[1,2]}': one per seq
        else:
            self.texts.append(text)
        self.arrived.set()

    def send(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    async def next_text(self) -> str:
        while not self.texts:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)
        return self.texts.pop(0)

    async def acks(self, count: int) -> None:
        while self.acked < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)

    async def close(self) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 10)


_ACK = '{"type":"ack",'


class _Bench:
    def __init__(self, fixture: Any, options: dict[str, Any]) -> None:
        self.fixture = fixture
        self.per_frame: int = options["per_frame"]
        self.rounds: int = options["rounds"]
        self.warmup: int = options["warmup"]
        self.dashboards: int = options["dashboards"]
        self.profile: int = options["profile"]
        self.delivered = 0  # dashboard frames received while measuring

    async def run(self) -> dict[str, Any]:
        from config.asgi import application
        from monitoring.ingest.batcher import batcher_shutdown

        fixture = self.fixture
        dashboards = []
        for n in range(self.dashboards):
            dashboard = _Socket(application, "/ws/dashboard/")
            dashboard.inbox.put_nowait({"type": "websocket.connect"})
            dashboard.send(json.dumps({"type": "auth", "token": fixture.jwt}))
            assert '"auth.ok"' in await dashboard.next_text()
            ward = fixture.ward_ids[n % len(fixture.ward_ids)]
            dashboard.send(json.dumps({"type": "subscribe", "ward": ward}))
            assert '"snapshot"' in await dashboard.next_text()
            dashboards.append(dashboard)
        devices = []
        for bench in fixture.devices:
            headers = [(b"authorization", f"Device {bench.token}".encode())]
            device = _Socket(application, "/ws/devices/", headers)
            device.inbox.put_nowait({"type": "websocket.connect"})
            devices.append((bench, device))
        # Every frame made before measuring, so the figure is the server's.
        recorded_at = datetime.now(UTC).isoformat()
        frames = [
            [
                json.dumps(
                    {
                        "type": "readings",
                        "items": [
                            {
                                "seq": seq,
                                "metric": bench.metric,
                                "bpm": 140,
                                "recorded_at": recorded_at,
                            }
                            for seq in range(n * self.per_frame + 1, (n + 1) * self.per_frame + 1)
                        ],
                    }
                )
                for bench, _ in devices
            ]
            for n in range(self.warmup + self.rounds)
        ]
        for n in range(self.warmup):
            await self._round(n, frames[n], devices, dashboards)
        profiler = cProfile.Profile() if self.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        self.delivered = 0
        for n in range(self.warmup, self.warmup + self.rounds):
            await self._round(n, frames[n], devices, dashboards)
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        readings = self.rounds * len(devices) * self.per_frame
        delivered = self.delivered
        for _, device in devices:
            await device.close()
        for dashboard in dashboards:
            await dashboard.close()
        await batcher_shutdown()
        stored = await sync_to_async(_stored_count)()
        await sync_to_async(connections.close_all)()  # the consumers' thread's connection
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(self.profile)
        return {
            "devices": len(devices),
            "per_frame": self.per_frame,
            "dashboards": len(dashboards),
            "measured_readings": readings,
            "stored_total": stored,
            "dashboard_frames": delivered,
            "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
            "cpu_ms_per_1000_readings": round(cpu * 1000 / readings * 1000, 2),
        }

    async def _round(
        self, n: int, frames: list[str], devices: list[Any], dashboards: list[_Socket]
    ) -> None:
        for (_, device), frame in zip(devices, frames, strict=True):
            device.send(frame)
        for _, device in devices:
            await device.acks((n + 1) * self.per_frame)
        for dashboard in dashboards:
            self.delivered += len(dashboard.texts)
            dashboard.texts.clear()


def _stored_count() -> int:
    from monitoring.models import Reading

    return Reading.objects.count()
