"""The device simulator's HL7 mode: each simulated monitor is a PCD-01 gateway connection.

Every ``1 / rate`` seconds a monitor sends one ORU^R01 over its MLLP connection with its
current heart rate (and, for an obstetric patient, the fetal heart rate as LOINC 55283-6),
the same traces and bradycardia episodes as the WebSocket mode (``devtools.simulator``). A
message is kept until its ACK arrives: after a reconnect every unacknowledged one is sent
again with the same MSH-10, which the server stores once. ``manage.py simulate --hl7
host:port`` is the entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import hl7
from django.utils import timezone

from devtools.simulator import (
    DeviceStats,
    EpisodeConfig,
    QueuedMonitor,
    RunOptions,
    Trace,
    adult_trace,
    fetal_trace,
    maternal_trace,
    monitored_devices,
    monitors_run,
)
from hl7v2.mllp import frame, frame_read
from hl7v2.pcd01 import ObservationOut, oru_r01_build

logger = logging.getLogger(__name__)

CODES = {
    "heart_rate": ("147842^MDC_ECG_HEART_RATE^MDC", "264864^MDC_DIM_BEAT_PER_MIN^MDC"),
    "fetal_heart_rate": ("55283-6^Fetal Heart rate^LN", "/min"),
}


@dataclass
class Hl7DeviceSpec:
    serial: str
    mrn: str
    profile: str  # adult | obstetric


class Hl7SimulatedDevice(QueuedMonitor[str]):
    """One monitor sending an ORU^R01 every ``1 / rate`` s until each is acknowledged."""

    def __init__(
        self,
        spec: Hl7DeviceSpec,
        *,
        host: str,
        port: int,
        rate: float,
        rng: random.Random,
        episodes: EpisodeConfig,
        run_id: str,
    ) -> None:
        self.spec, self.host, self.port, self.rate = spec, host, port, rate
        self.rng = rng
        self.run_id = run_id
        self.traces: dict[str, Trace] = (
            {"heart_rate": maternal_trace(rng), "fetal_heart_rate": fetal_trace(rng, episodes)}
            if spec.profile == "obstetric"
            else {"heart_rate": adult_trace(rng, episodes)}
        )
        self.count = 0
        self.unacked: OrderedDict[str, tuple[bytes, int]] = OrderedDict()  # id -> frame, n
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.stats = DeviceStats()
        self.started = time.monotonic()
        self._all_acked = asyncio.Event()

    def produce(self) -> None:
        t = time.monotonic() - self.started
        now = timezone.now()
        self.count += 1
        control_id = f"{self.run_id}-{self.spec.serial}-{self.count}"
        observations = [
            ObservationOut(
                str(trace.next(t)),
                at=now,
                code=CODES[m][0],
                unit=CODES[m][1],
                device=self.spec.serial,
            )
            for m, trace in self.traces.items()
        ]
        message = oru_r01_build(control_id=control_id, observations=observations, mrn=self.spec.mrn)
        self.unacked[control_id] = (frame(message), len(observations))
        self.outbox.put_nowait(control_id)
        self.stats.sent += len(observations)
        self._all_acked.clear()

    @property
    def label(self) -> str:
        return self.spec.serial

    def unacked_readings(self) -> int:
        return sum(n for _, n in self.unacked.values())

    def episodes_started(self) -> int:
        return sum(t.episodes_started for t in self.traces.values())

    async def _connection_loop(self) -> None:
        backoff = 0.5
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), 10
                )
            except (OSError, TimeoutError) as exc:
                logger.info("%s: cannot connect (%s); retrying", self.spec.serial, exc)
            else:
                self.stats.connects += 1
                backoff = 0.5
                try:
                    await self._session(reader, writer)
                except (OSError, ConnectionError) as exc:
                    logger.info("%s: connection lost (%s); reconnecting", self.spec.serial, exc)
                finally:
                    writer.close()
            backoff = await self._reconnect_pause(backoff)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Whatever was not acknowledged goes again, oldest first, with its own MSH-10.
        while not self.outbox.empty():
            self.outbox.get_nowait()
        in_flight: list[str] = list(self.unacked)
        if in_flight and self.stats.connects > 1:
            self.stats.resent += sum(self.unacked[c][1] for c in in_flight)
        for control_id in in_flight:
            writer.write(self.unacked[control_id][0])
        receiver = asyncio.create_task(self._receive(reader, in_flight))
        try:
            while (queued := await self._next_queued(receiver)) is not None:
                if queued in self.unacked:
                    in_flight.append(queued)
                    writer.write(self.unacked[queued][0])
                    await writer.drain()
                    self.stats.frames += 1
        finally:
            receiver.cancel()

    async def _receive(self, reader: asyncio.StreamReader, in_flight: list[str]) -> None:
        """ACKs come in the order the messages went; each names its message in MSA-2."""
        while True:
            answer = await frame_read(reader, limit=2**20)
            if answer is None:
                raise ConnectionError("the listener closed the connection")
            msa = hl7.parse(answer.text()).segment("MSA")
            code, control_id = str(msa(1)), str(msa(2))
            with contextlib.suppress(ValueError):
                in_flight.remove(control_id)
            entry = self.unacked.pop(control_id, None)
            if entry is not None:
                if code == "AA":
                    self.stats.acked += entry[1]
                else:  # refused: not resent
                    self.stats.rejected += entry[1]
                    if len(self.stats.errors) < 20:
                        self.stats.errors.append({"ack": code, "message": answer.text()})
                    logger.warning("%s: %s", self.spec.serial, answer.text().replace("\r", " | "))
            if not self.unacked:
                self._all_acked.set()


async def simulate_hl7(
    specs: list[Hl7DeviceSpec],
    *,
    host: str,
    port: int,
    run: RunOptions,
) -> dict[str, Any]:
    """Run every monitor concurrently; the same counts as the WebSocket mode's report."""
    rng = random.Random(run.seed)
    # Control ids carry the start time: a restarted simulator never reuses one (a reused
    # MSH-10 would be taken as a resend and not stored).
    run_id = f"SIM{int(time.time() * 1000)}"
    devices = [
        Hl7SimulatedDevice(
            spec,
            host=host,
            port=port,
            rate=run.rate,
            rng=random.Random(rng.random()),
            episodes=run.episodes,
            run_id=run_id,
        )
        for spec in specs
    ]
    return await monitors_run(devices, duration=run.duration, drain_timeout=run.drain_timeout)


def hl7_demo_devices(limit: int | None = None) -> list[Hl7DeviceSpec]:
    """Active, assigned devices from the database (an HL7 monitor needs no token)."""
    return [
        Hl7DeviceSpec(serial=device.serial, mrn=patient.mrn, profile=patient.monitoring_profile)
        for device, patient in monitored_devices(limit)
    ]
