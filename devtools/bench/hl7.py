"""HL7 ingest under load: many MLLP connections, each a gateway sending PCD-01 ORU^R01
messages to the listener and timing each ACK (``manage.py hl7_loadtest``)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from devtools.bench.stats import percentiles_ms
from hl7v2.mllp import frame, frame_read
from hl7v2.pcd01 import ObservationOut, oru_r01_build


@dataclass(frozen=True)
class Hl7Load:
    connections: int = 100
    messages: int = 50  # per connection
    window: int = 1  # messages in flight per connection (1: wait for each ACK)
    observations: int = 1  # heart rates per message
    label: str = "bench"


def _messages(load: Hl7Load, index: int, serial: str, mrn: str) -> list[bytes]:
    """Every message of one connection, built before the clock starts."""
    now = timezone.now()
    span = load.messages * load.observations
    framed = []
    for n in range(load.messages):
        observations = [
            ObservationOut(
                str(60 + (n + k) % 40),
                at=now - timedelta(seconds=span - n * load.observations - k),
                device=serial,
            )
            for k in range(load.observations)
        ]
        text = oru_r01_build(
            control_id=f"{load.label}-{index}-{n}", observations=observations, mrn=mrn
        )
        framed.append(frame(text))
    return framed


def _ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK, read cheaply: the load generator shares the cores with the server."""
    start = ack.find(b"\rMSA|")
    return ack[start + 5 : start + 7].decode() if start >= 0 else "??"


async def hl7_drive(
    load: Hl7Load, *, host: str, port: int, devices: list[tuple[str, str]]
) -> dict[str, Any]:
    """Run the load against the listener at ``host:port``; ``devices`` are (serial, MRN)
    pairs, one per connection. Returns the counts and the ACK latency percentiles."""
    plans = [_messages(load, i, *devices[i % len(devices)]) for i in range(load.connections)]
    latencies: list[float] = []
    codes: dict[str, int] = {}

    async def gateway(messages: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        sent: deque[float] = deque()
        slots = asyncio.Semaphore(load.window)

        async def receive() -> None:
            for _ in messages:
                answer = await frame_read(reader, limit=2**20)
                if answer is None:
                    raise ConnectionError("the listener closed the connection")
                latencies.append(time.perf_counter() - sent.popleft())
                code = _ack_code(answer.data)
                codes[code] = codes.get(code, 0) + 1
                slots.release()

        receiver = asyncio.create_task(receive())
        for message in messages:
            await slots.acquire()
            sent.append(time.perf_counter())
            writer.write(message)
            await writer.drain()
        await receiver
        writer.close()
        await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(gateway(plan) for plan in plans))
    elapsed = time.perf_counter() - started
    total = load.connections * load.messages
    return {
        "connections": load.connections,
        "messages": total,
        "observations_per_message": load.observations,
        "window": load.window,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(total / elapsed, 1),
        "readings_per_second": round(total * load.observations / elapsed, 1),
        "acks": codes,
        "ack_latency_ms": percentiles_ms(latencies),
    }
