"""A device simulator that speaks the real device protocol over a real WebSocket.

Each simulated monitor produces a realistic trace: an adult heart rate with occasional
bradycardia episodes long enough to trip the alarm hold times, or for an obstetric patient a
cardiotocogram (maternal HR, fetal HR and uterine activity: ``devtools.ctg_trace``). It keeps
every reading until the server acknowledges it, and resends the unacknowledged ones after a
reconnect, after a ``storage_unavailable`` error frame (with back-off) and when no ack came
within the ack timeout; it batches frames when it falls behind. ``manage.py simulate`` is the
command-line entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from websockets.exceptions import ConnectionClosed, InvalidStatus

from devtools.ctg_trace import CtgTrace
from devtools.device_client import (
    MAX_FRAME_ITEMS,
    Reply,
    close_refusal,
    device_connect,
    device_replies,
    readings_frame,
)

if TYPE_CHECKING:
    from clinical.models import Device, Patient

logger = logging.getLogger(__name__)

# A fetal bradycardia (a prolonged deceleration) is rarer than an adult's episode: one per
# this many adult episode gaps, so a ward's CTGs mostly read normal or suspicious.
FETAL_EPISODE_RARITY = 24
ACK_TIMEOUT = 10.0  # a reading neither acked nor refused this long after sending is sent again
RETRY_BACKOFF_START = 0.5  # after storage_unavailable; doubles up to RETRY_BACKOFF_MAX
RETRY_BACKOFF_MAX = 5.0


@dataclass
class EpisodeConfig:
    """Bradycardia episodes: on average one per ``every`` seconds per device (exponential
    gaps), lasting ``adult_seconds`` (adult HR <= 40) or ``fetal_seconds`` (FHR < 100)."""

    every: float = 600.0
    adult_seconds: float = 45.0
    fetal_seconds: float = 200.0
    enabled: bool = True


@dataclass(frozen=True)
class RunOptions:
    """How the simulated monitors run, over either protocol: readings per second each, for how
    long (None: until stopped), the seed of their randomness, their bradycardia episodes, and
    how long they wait for their last acks at the end."""

    rate: float
    duration: float | None = None
    seed: int | None = None
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    drain_timeout: float = 15.0


class Trace:
    """A heart-rate generator: ``next(t)`` gives the bpm at time ``t`` seconds."""

    def __init__(
        self,
        rng: random.Random,
        *,
        baseline: float,
        variability: float,
        low: int,
        high: int,
        brady_bpm: tuple[int, int],
        episode_seconds: float,
        episodes: EpisodeConfig,
        excursions: bool = False,
    ) -> None:
        self.rng = rng
        self.baseline = baseline
        self.variability = variability
        self.low, self.high = low, high
        self.brady_bpm = brady_bpm
        self.episode_seconds = episode_seconds
        self.episodes = episodes
        self.excursions = excursions
        self.drift = 0.0
        self.phase = rng.uniform(0, 2 * math.pi)
        self.episode_until = -1.0
        self.episode_level = 0.0
        self.next_episode = self._gap(0.0)
        self.excursion: tuple[float, float, float] | None = None  # start, end, depth
        self.episodes_started = 0

    def _gap(self, now: float) -> float:
        if not self.episodes.enabled or self.episodes.every <= 0:
            return math.inf
        return now + self.rng.expovariate(1.0 / self.episodes.every)

    def in_episode(self, t: float) -> bool:
        return t < self.episode_until

    def next(self, t: float) -> int:
        if t >= self.next_episode and not self.in_episode(t):
            self.episode_until = t + self.episode_seconds
            self.episode_level = self.rng.uniform(*self.brady_bpm)
            self.next_episode = self._gap(self.episode_until)
            self.episodes_started += 1
        if self.in_episode(t):
            bpm = self.episode_level + self.rng.gauss(0, 1.5)
            return round(min(max(bpm, self.low), self.brady_bpm[1]))
        # Slow wander of the baseline, a breathing-rate oscillation and beat-to-beat noise.
        self.drift = 0.995 * self.drift + self.rng.gauss(0, 0.4)
        wave = self.variability * 0.5 * math.sin(2 * math.pi * t / 4.5 + self.phase)
        bpm = self.baseline + self.drift + wave + self.rng.gauss(0, self.variability * 0.3)
        if self.excursions:
            bpm += self._excursion(t)
        return round(min(max(bpm, self.low), self.high))

    def _excursion(self, t: float) -> float:
        """Fetal accelerations (+15-25 bpm for 15-30 s) and decelerations (-15-40 bpm)."""
        if self.excursion is None or t > self.excursion[1]:
            self.excursion = None
            if self.rng.random() < 0.004:  # about one every few minutes at 1 Hz
                duration = self.rng.uniform(15, 40)
                depth = (
                    self.rng.uniform(15, 25)
                    if self.rng.random() < 0.7
                    else -self.rng.uniform(15, 40)
                )
                self.excursion = (t, t + duration, depth)
            return 0.0
        start, end, depth = self.excursion
        # A smooth rise and fall over the excursion.
        return depth * math.sin(math.pi * (t - start) / (end - start))


@dataclass(frozen=True, slots=True)
class TraceRanges:
    """One kind of heart rate: the ranges its baseline and variability are drawn from (per
    device), the limits of its values and the band of its bradycardia episodes."""

    baseline: tuple[float, float]
    variability: tuple[float, float]
    low: int
    high: int
    brady_bpm: tuple[int, int]


# Baseline and variability ranges, lowest and highest value, bradycardia episodes' band.
ADULT = TraceRanges((64, 92), (2, 5), 45, 140, (32, 39))
MATERNAL = TraceRanges((78, 100), (2, 5), 55, 140, (40, 45))
FETAL = TraceRanges((120, 155), (5, 15), 60, 200, (80, 95))


def _trace(
    rng: random.Random,
    ranges: TraceRanges,
    *,
    episode_seconds: float,
    episodes: EpisodeConfig,
    excursions: bool = False,
) -> Trace:
    return Trace(
        rng,
        baseline=rng.uniform(*ranges.baseline),
        variability=rng.uniform(*ranges.variability),
        low=ranges.low,
        high=ranges.high,
        brady_bpm=ranges.brady_bpm,
        episode_seconds=episode_seconds,
        episodes=episodes,
        excursions=excursions,
    )


def adult_trace(rng: random.Random, episodes: EpisodeConfig) -> Trace:
    return _trace(rng, ADULT, episode_seconds=episodes.adult_seconds, episodes=episodes)


def maternal_trace(rng: random.Random) -> Trace:
    return _trace(rng, MATERNAL, episode_seconds=0, episodes=EpisodeConfig(enabled=False))


def fetal_trace(rng: random.Random, episodes: EpisodeConfig) -> Trace:
    return _trace(
        rng, FETAL, episode_seconds=episodes.fetal_seconds, episodes=episodes, excursions=True
    )


@dataclass
class DeviceSpec:
    token: str
    profile: str  # adult | obstetric
    label: str = ""


@dataclass
class DeviceStats:
    sent: int = 0  # unique readings sent at least once
    acked: int = 0  # unique readings acknowledged
    rejected: int = 0  # readings refused with an error frame (not resent)
    resent: int = 0  # readings sent again (reconnect, storage_unavailable, ack timeout)
    storage_errors: int = 0  # storage_unavailable error frames received
    frames: int = 0
    connects: int = 0
    fatal: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


_Key = TypeVar("_Key")  # what a monitor's outbox queues: a seq, a control id


class QueuedMonitor(Generic[_Key]):
    """What every simulated monitor does, whatever it speaks (device WebSocket, HL7 over
    MLLP): produce at ``rate`` Hz into an outbox, keep what is not acknowledged yet, and on the
    way out wait a while for the last acknowledgements. A subclass says what one moment
    produces (``produce``) and how it connects (``_connection_loop``)."""

    rate: float
    rng: random.Random
    stats: DeviceStats
    outbox: asyncio.Queue[_Key]
    unacked: OrderedDict[Any, Any]
    _all_acked: asyncio.Event

    def produce(self) -> None:
        raise NotImplementedError

    async def _connection_loop(self) -> None:
        raise NotImplementedError

    @property
    def label(self) -> str:
        raise NotImplementedError

    def unacked_readings(self) -> int:
        """Readings sent and not acknowledged (yet)."""
        return len(self.unacked)

    def episodes_started(self) -> int:
        """Abnormal episodes this monitor's traces began (the alarms a run should raise)."""
        raise NotImplementedError

    async def run(self, *, duration: float | None, drain_timeout: float = 15.0) -> DeviceStats:
        producer = asyncio.create_task(self._produce_for(duration))
        connection = asyncio.create_task(self._connection_loop())
        try:
            await producer
            # Stop producing, then wait for the last acknowledgements.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_all_acked(), drain_timeout)
        finally:
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connection
        return self.stats

    async def _next_queued(self, receiver: asyncio.Task[None]) -> _Key | None:
        """The next item of the outbox, to send; None once ``receiver`` (the task that reads
        the acknowledgements) has ended, raising what ended it (the connection was lost)."""
        get = asyncio.create_task(self.outbox.get())
        done, _ = await asyncio.wait({get, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if receiver in done:
            get.cancel()
            receiver.result()
            return None
        return get.result()

    async def _reconnect_pause(self, backoff: float) -> float:
        """Wait ``backoff`` seconds and up to half as long again (so that monitors cut off
        together do not come back together); returns the next pause, doubled up to 5 s."""
        await asyncio.sleep(backoff + self.rng.uniform(0, backoff / 2))
        return min(backoff * 2, 5.0)

    async def _wait_all_acked(self) -> None:
        while self.unacked and self.stats.fatal is None:
            self._all_acked.clear()
            await self._all_acked.wait()

    async def _produce_for(self, duration: float | None) -> None:
        interval = 1.0 / self.rate
        deadline = None if duration is None else time.monotonic() + duration
        next_at = time.monotonic()
        while deadline is None or time.monotonic() < deadline:
            if self.stats.fatal:
                return
            self.produce()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


class SimulatedDevice(QueuedMonitor[int]):
    """One monitor: generates readings at ``rate`` Hz and streams them until acknowledged."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        url: str,
        rate: float,
        rng: random.Random,
        episodes: EpisodeConfig,
        first_seq: int,
        ack_timeout: float = ACK_TIMEOUT,
        history_seconds: float = 0.0,
    ) -> None:
        """``history_seconds``: an obstetric monitor starts with this much trace already
        recorded (sent first, with its own past times), as a bed monitored for a while."""
        self.spec = spec
        self.ack_timeout = ack_timeout
        self.sent_at: dict[int, float] = {}  # seq -> when it was last sent (monotonic)
        self.retry_backoff = RETRY_BACKOFF_START
        self.url = url
        self.rate = rate
        self.rng = rng
        self.seq = first_seq
        self.traces: dict[str, Trace] = {}
        self.ctg: CtgTrace | None = None
        if spec.profile == "obstetric":
            # Maternal HR, fetal HR and uterine activity as a labour ward records them.
            self.ctg = CtgTrace(
                rng,
                maternal=maternal_trace(rng).next,
                prolonged_every=episodes.every * FETAL_EPISODE_RARITY if episodes.enabled else 0.0,
                prolonged_seconds=episodes.fetal_seconds,
            )
        else:
            self.traces = {"heart_rate": adult_trace(rng, episodes)}
        self.unacked: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.outbox: asyncio.Queue[int] = asyncio.Queue()
        self.stats = DeviceStats()
        self.history_seconds = int(history_seconds) if self.ctg is not None else 0
        self.started = time.monotonic()
        self._all_acked = asyncio.Event()
        if self.history_seconds:
            now = datetime.now(UTC)
            for k in range(self.history_seconds):
                self.produce(at=k, recorded_at=now - timedelta(seconds=self.history_seconds - k))

    def produce(self, *, at: float | None = None, recorded_at: datetime | None = None) -> None:
        """The readings of one moment: now, or second ``at`` of the history."""
        t = time.monotonic() - self.started + self.history_seconds if at is None else at
        recorded_at = recorded_at or datetime.now(UTC)
        if self.ctg is not None:
            values = self.ctg.next(t)
        else:
            values = {metric: trace.next(t) for metric, trace in self.traces.items()}
        for metric, value in values.items():
            if value is None:
                continue  # the fetal signal is lost: the monitor sends nothing
            self.seq += 1
            self.unacked[self.seq] = {
                "seq": self.seq,
                "metric": metric,
                "value": value,
                "recorded_at": recorded_at.isoformat(),
            }
            self.outbox.put_nowait(self.seq)
            self.stats.sent += 1
        self._all_acked.clear()

    @property
    def label(self) -> str:
        return self.spec.label

    def episodes_started(self) -> int:
        traces = sum(t.episodes_started for t in self.traces.values())
        return traces + (self.ctg.counts.decelerations.get("prolonged", 0) if self.ctg else 0)

    async def _connection_loop(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with device_connect(self.url, self.spec.token, open_timeout=10) as ws:
                    self.stats.connects += 1
                    backoff = 0.5
                    await self._session(ws)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                refusal = close_refusal(code)
                if refusal is not None:
                    self.stats.fatal = refusal
                    self._all_acked.set()
                    logger.error("%s: %s", self.spec.label, self.stats.fatal)
                    return
                logger.info("%s: connection closed (%s); reconnecting", self.spec.label, code)
            except (OSError, InvalidStatus, TimeoutError) as exc:
                logger.info("%s: cannot connect (%s); retrying", self.spec.label, exc)
            backoff = await self._reconnect_pause(backoff)

    async def _session(self, ws: Any) -> None:
        # Resend everything not acknowledged on the previous connection, oldest first.
        while not self.outbox.empty():
            self.outbox.get_nowait()
        self.sent_at.clear()
        pending = list(self.unacked)
        if pending and self.stats.connects > 1:
            self.stats.resent += len(pending)
        for seq in pending:
            self.outbox.put_nowait(seq)
        receiver = asyncio.create_task(self._receive(ws))
        watchdog = asyncio.create_task(self._resend_unacked_after_timeout())
        try:
            while (queued := await self._next_queued(receiver)) is not None:
                seqs = [queued]
                # Behind (a backlog or a resend): one batch frame instead of many.
                while not self.outbox.empty() and len(seqs) < MAX_FRAME_ITEMS:
                    seqs.append(self.outbox.get_nowait())
                seqs = [s for s in dict.fromkeys(seqs) if s in self.unacked]
                if not seqs:
                    continue
                now = time.monotonic()
                for seq in seqs:
                    self.sent_at[seq] = now
                await ws.send(readings_frame([json.dumps(self.unacked[s]) for s in seqs]))
                self.stats.frames += 1
        finally:
            receiver.cancel()
            watchdog.cancel()

    def _requeue(self, seqs: list[int]) -> None:
        """Send these again (those still unacknowledged), once more."""
        seqs = [s for s in seqs if s in self.unacked]
        self.stats.resent += len(seqs)
        for seq in seqs:
            self.sent_at.pop(seq, None)  # queued: not timed until sent again
            self.outbox.put_nowait(seq)

    async def _resend_unacked_after_timeout(self) -> None:
        """A reading sent but neither acked nor refused within ``ack_timeout`` (an ack lost,
        a server that stopped answering without closing) is sent again."""
        while True:
            await asyncio.sleep(self.ack_timeout / 4)
            deadline = time.monotonic() - self.ack_timeout
            late = [seq for seq, at in self.sent_at.items() if at < deadline]
            if late:
                logger.info(
                    "%s: %d readings not acked in time; resending", self.spec.label, len(late)
                )
                self._requeue(late)

    async def _resend_later(self, seqs: list[int]) -> None:
        """After ``storage_unavailable``: back off (growing while it lasts), then resend."""
        delay = self.retry_backoff + self.rng.uniform(0, self.retry_backoff / 2)
        self.retry_backoff = min(self.retry_backoff * 2, RETRY_BACKOFF_MAX)
        for seq in seqs:
            self.sent_at.pop(seq, None)  # answered: the ack timeout does not apply
        await asyncio.sleep(delay)
        self._requeue(seqs)

    async def _receive(self, ws: Any) -> None:
        retries: set[asyncio.Task] = set()
        try:
            async for reply in device_replies(ws):
                self._on_reply(reply, retries)
        finally:
            for task in retries:  # a reconnect resends everything unacked anyway
                task.cancel()

    def _on_reply(self, reply: Reply, retries: set[asyncio.Task]) -> None:
        for seq in reply.acked:
            self.sent_at.pop(seq, None)
            if self.unacked.pop(seq, None) is not None:
                self.stats.acked += 1
                self.retry_backoff = RETRY_BACKOFF_START
        if reply.retry:
            self.stats.storage_errors += 1
            logger.warning(
                "%s: storage unavailable for %d readings", self.spec.label, len(reply.retry)
            )
            task = asyncio.create_task(self._resend_later(list(reply.retry)))
            retries.add(task)
            task.add_done_callback(retries.discard)
        elif reply.error is not None:
            refused = reply.refused
            if refused is not None:
                self.sent_at.pop(refused, None)
                if self.unacked.pop(refused, None) is not None:
                    self.stats.rejected += 1  # refused: do not resend
            if len(self.stats.errors) < 20:
                self.stats.errors.append(reply.error)
            logger.warning("%s: %s", self.spec.label, reply.error)
        if not self.unacked:
            self._all_acked.set()


async def simulate(
    specs: list[DeviceSpec],
    *,
    url: str,
    run: RunOptions,
    ctg_history_minutes: float = 0.0,
) -> dict[str, Any]:
    """Run every device concurrently; returns the counts (the ``--report``).

    ``ctg_history_minutes``: obstetric monitors start with recorded trace, as beds of a ward
    monitored for a while: each a random length between 12 minutes (more than the 10 a CTG
    needs to be classified) and this many, except about one in six that has just been
    attached (none: it reads "too short to classify yet" for its first 10 minutes)."""
    rng = random.Random(run.seed)
    # Sequence numbers start from the clock so a restarted simulator never reuses one
    # (a reused seq would be acknowledged as a duplicate and not stored).
    first_seq = int(time.time() * 1000)
    devices = []
    for spec in specs:
        device_rng = random.Random(rng.random())
        history = 0.0
        if ctg_history_minutes > 0 and device_rng.random() >= 1 / 6:
            history = 60 * device_rng.uniform(min(12.0, ctg_history_minutes), ctg_history_minutes)
        devices.append(
            SimulatedDevice(
                spec,
                url=url,
                rate=run.rate,
                rng=device_rng,
                episodes=run.episodes,
                first_seq=first_seq,
                history_seconds=history,
            )
        )
    return await monitors_run(devices, duration=run.duration, drain_timeout=run.drain_timeout)


async def monitors_run(
    devices: Sequence[QueuedMonitor], *, duration: float | None, drain_timeout: float
) -> dict[str, Any]:
    """Run every monitor concurrently and count what they did (the simulators' report)."""
    started = time.monotonic()
    results = await asyncio.gather(
        *(d.run(duration=duration, drain_timeout=drain_timeout) for d in devices)
    )
    return {
        "devices": len(devices),
        "seconds": round(time.monotonic() - started, 2),
        "sent": sum(r.sent for r in results),
        "acked": sum(r.acked for r in results),
        "rejected": sum(r.rejected for r in results),
        "resent": sum(r.resent for r in results),
        "storage_errors": sum(r.storage_errors for r in results),
        "unacked": sum(d.unacked_readings() for d in devices),
        "frames": sum(r.frames for r in results),
        "connects": sum(r.connects for r in results),
        "episodes": sum(d.episodes_started() for d in devices),
        "fatal": [
            f"{d.label}: {r.fatal}" for d, r in zip(devices, results, strict=True) if r.fatal
        ],
    }


# --- Demo devices ----------------------------------------------------------------------------


def demo_devices(limit: int | None = None) -> list[DeviceSpec]:
    """Active, assigned devices from the database, with freshly rotated tokens (the demo data
    stores only their hashes)."""
    from clinical.services import device_rotate_token

    return [
        DeviceSpec(
            token=device_rotate_token(device=device),
            profile=patient.monitoring_profile,
            label=device.serial,
        )
        for device, patient in monitored_devices(limit)
    ]


def monitored_devices(limit: int | None = None) -> list[tuple[Device, Patient]]:
    """The active devices assigned to a patient (the demo's monitors), each with its patient,
    from the database."""
    from clinical.models import Device

    devices = Device.objects.filter(is_active=True, patient__isnull=False).select_related("patient")
    return [(d, d.patient) for d in (devices[:limit] if limit else devices) if d.patient]
