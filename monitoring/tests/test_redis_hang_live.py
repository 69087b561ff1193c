"""A Redis that hangs under load, against a real Daphne (``-m live``): a Redis of the test's
own is stopped with SIGSTOP for 8 s (connections accepted, nothing answered, as a server in a
long save or a black-holed host) while 10 devices send 4 readings a second each over real
WebSockets, then resumed.

The storing path must not wait for it: at least 99 % of the readings sent from the hang on are
acked within 1 s (the first failed append opens the breaker of ``monitoring.stream.backlog``;
the readings go to the database backlog and are replayed by a thread of their own). Every
acked reading is stored exactly once, and every stored reading reaches the readings stream
once Redis answers.

The devices send on a fixed schedule without waiting for acks (a device's clock, not the
server's pace, decides when it sends), and each reading's latency is measured from the moment
it was actually sent, so a late client loop cannot make the server look slow; the client's own
lateness is reported with the figures (``-s``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import redis as redis_py
from websockets.asyncio.client import ClientConnection

from monitoring.stream.entries import entry_readings, partition_key, partitions
from testing.live import live_device, until
from testing.processes import Daphne, child_env, django_run
from testing.redis_outage import StoppableRedis
from testing.ws import reading

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

DEVICES = 10
PERIOD = 0.25  # 4 readings/s per device
BEFORE = 3.0  # seconds of streaming before the hang
HANG = 8.0
AFTER = 4.0
ACK_WITHIN = 1.0
ACKED_SHARE = 0.99

SEED = """
from testing.factories import DeviceFactory, PatientFactory, WardFactory
ward = WardFactory()
result = []
for i in range(N):
    d = DeviceFactory(patient=PatientFactory(ward=ward, monitoring_profile="adult"))
    result.append({"id": d.id, "token": d.token})
"""

STORED = """
from monitoring.models import Reading, StreamBacklog
result = {
    "rows": [list(r) for r in Reading.objects.filter(device_id__in=IDS).values_list(
        "device_id", "seq", "id")],
    "backlog": StreamBacklog.objects.count(),
}
"""


@dataclass
class Device:
    id: int
    ws: ClientConnection
    sent: dict[int, float] = field(default_factory=dict)  # seq -> when it was sent
    late: list[float] = field(default_factory=list)  # how late each send was on its schedule
    acked: dict[int, float] = field(default_factory=dict)  # seq -> when its ack arrived
    errors: list[dict[str, Any]] = field(default_factory=list)

    async def send_until(self, start: float, end: float) -> None:
        """One reading every PERIOD from ``start`` (monotonic) until ``end``, acked or not."""
        seq = 0
        while (due := start + seq * PERIOD) < end:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            seq += 1
            now = time.monotonic()
            self.late.append(now - due)
            self.sent[seq] = now
            await self.ws.send(json.dumps({"type": "reading", **reading(seq)}))

    async def receive(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            now = time.monotonic()
            if frame["type"] == "ack":
                for seq in frame["seqs"]:
                    self.acked.setdefault(seq, now)
            elif frame["type"] == "error":
                self.errors.append(frame)


def _stream_ids(url: str) -> Counter[int]:
    """Reading ids in the readings stream, with how often each is there."""
    client = redis_py.Redis.from_url(url)
    try:
        ids: Counter[int] = Counter()
        for partition in range(partitions()):
            for _, fields in cast("list[Any]", client.xrange(partition_key(partition))):
                for reading in entry_readings(fields):
                    ids[reading.id] += 1
        return ids
    finally:
        client.close()


async def test_a_hung_redis_does_not_hold_the_acks(live_database_url, tmp_path):
    redis = StoppableRedis(tmp_path / "redis").start()
    env = child_env(live_database_url, tmp_path, REDIS_URL=redis.url)
    seeded = await asyncio.to_thread(django_run, env, f"N = {DEVICES}\n" + SEED)
    server = Daphne(env, tmp_path / "daphne.log")
    receivers: list[asyncio.Task] = []
    try:
        await asyncio.to_thread(server.wait_ready)
        devices = [
            Device(d["id"], await live_device(server.url("/ws/devices/"), d["token"]))
            for d in seeded
        ]
        receivers = [asyncio.create_task(d.receive()) for d in devices]
        start = time.monotonic() + 0.5
        end = start + BEFORE + HANG + AFTER
        senders = [
            # Spread over the period, as independent devices are.
            asyncio.create_task(d.send_until(start + i * PERIOD / DEVICES, end))
            for i, d in enumerate(devices)
        ]
        await asyncio.sleep(max(0.0, start + BEFORE - time.monotonic()))
        redis.pause()
        hung_at = time.monotonic()
        try:
            await asyncio.sleep(HANG)
        finally:
            redis.resume()
        await asyncio.gather(*senders)

        sent = sum(len(d.sent) for d in devices)
        await until(lambda: sum(len(d.acked) for d in devices) >= sent, 30, "every ack")

        # --- the acks: from the hang on, 99 % within a second
        latencies = sorted(
            d.acked.get(seq, float("inf")) - at
            for d in devices
            for seq, at in d.sent.items()
            if at >= hung_at
        )
        within = sum(1 for latency in latencies if latency <= ACK_WITHIN) / len(latencies)
        figures = {
            "sent": sent,
            "acked": sum(len(d.acked) for d in devices),
            "from_hang": len(latencies),
            "acked_within_1s": round(within, 4),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "client_late_max_ms": round(max(x for d in devices for x in d.late) * 1000, 1),
        }
        print(json.dumps(figures))
        assert not [e for d in devices for e in d.errors], [d.errors for d in devices]
        assert figures["acked"] == sent, figures
        assert within >= ACKED_SHARE, (figures, server.logs())
        assert b"readings deferred to the backlog" in server.output()  # the breaker opened

        # --- every acked reading stored once, and in the stream once Redis answers
        ids = [d.id for d in devices]
        stored: dict[str, Any] = {}

        def settled() -> bool:
            stored.update(django_run(env, f"IDS = {ids}\n" + STORED))
            return stored["backlog"] == 0

        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(settled):
            assert time.monotonic() < deadline, "the backlog was not replayed"
            await asyncio.sleep(0.5)
        keys = Counter((device, seq) for device, seq, _ in stored["rows"])
        acked = {(d.id, seq) for d in devices for seq in d.acked}
        assert set(keys) == acked and set(keys.values()) == {1}
        in_stream = await asyncio.to_thread(_stream_ids, redis.url)
        assert {reading_id for _, _, reading_id in stored["rows"]} <= set(in_stream)
        print(json.dumps({"stream_entries": sum(in_stream.values()), "stored": len(keys)}))
    finally:
        for task in receivers:
            task.cancel()
        server.stop()
        redis.stop()
