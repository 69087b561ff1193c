"""The simulator resends what the server did not store: after a ``storage_unavailable`` error
frame, after a close, and when no ack came in time. Against a scripted WebSocket server."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from devtools import simulator
from devtools.simulator import DeviceSpec, EpisodeConfig, SimulatedDevice

pytestmark = pytest.mark.timeout(60)

Script = Callable[["_Recording", int], Awaitable[None]]


def _seqs(frame: dict[str, Any]) -> list[int]:
    items = frame["items"] if frame["type"] == "readings" else [frame]
    return [item["seq"] for item in items]


async def _run(script: Script, **device_options: Any) -> tuple[SimulatedDevice, list[list[int]]]:
    """One simulated device against a server that runs ``script(ws, connection_number)``;
    returns the device and every frame's seqs as the server received them."""
    received: list[list[int]] = []
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await script(_Recording(ws, received), connections)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        device = SimulatedDevice(
            DeviceSpec(token="t", profile="adult", label="dev"),
            url=f"ws://127.0.0.1:{port}/ws/devices/",
            rate=10,
            rng=random.Random(1),
            episodes=EpisodeConfig(enabled=False),
            first_seq=0,
            **device_options,
        )
        await device.run(duration=0.25, drain_timeout=20)
    return device, received


class _Recording:
    """A server connection that records the seqs of each frame it receives."""

    def __init__(self, ws: ServerConnection, received: list[list[int]]) -> None:
        self.ws, self.received = ws, received

    async def frame(self) -> list[int]:
        seqs = _seqs(json.loads(await self.ws.recv()))
        self.received.append(seqs)
        return seqs

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def ack_forever(self) -> None:
        while True:
            await self.send({"type": "ack", "seqs": await self.frame()})


async def test_resends_after_a_storage_unavailable_error_frame(monkeypatch):
    monkeypatch.setattr(simulator, "RETRY_BACKOFF_START", 0.05)
    failed: list[int] = []

    async def script(ws: Any, number: int) -> None:
        failed.extend(await ws.frame())
        error = {"code": "storage_unavailable", "message": "down", "details": None}
        await ws.send({"type": "error", "seqs": failed, "error": error})
        await ws.ack_forever()

    device, received = await _run(script)
    assert device.stats.storage_errors == 1
    assert device.stats.acked == device.stats.sent and not device.unacked
    assert device.stats.rejected == 0
    later = [s for frame in received[1:] for s in frame]
    assert set(failed) <= set(later)  # every failed reading was sent again
    assert device.stats.connects == 1  # on the same connection


async def test_resends_after_a_close(monkeypatch):
    async def script(ws: Any, number: int) -> None:
        if number == 1:
            await ws.frame()
            await ws.ws.close(4503, "storage unavailable")
            return
        await ws.ack_forever()

    device, received = await _run(script)
    assert device.stats.connects == 2
    assert device.stats.acked == device.stats.sent and not device.unacked
    assert set(received[0]) <= {s for frame in received[1:] for s in frame}


async def test_resends_what_was_not_acked_within_the_ack_timeout():
    ignored: list[int] = []

    async def script(ws: Any, number: int) -> None:
        ignored.extend(await ws.frame())  # neither acked nor refused
        await ws.ack_forever()

    device, _ = await _run(script, ack_timeout=0.4)
    assert device.stats.acked == device.stats.sent and not device.unacked
    assert device.stats.resent >= len(ignored) > 0
    assert device.stats.connects == 1
