"""The streaming benchmark, from one asyncio process over real WebSockets.

- ``stream``: D devices send readings at R Hz each on W wards while B dashboards watch those
  wards. Counts sends, acks (per device), rows stored (in the database), duplicates, deliveries
  per dashboard; measures ack latency (send -> ack) and end-to-end latency (send -> dashboard
  receipt). Send times are kept per (device, seq) in this process: one clock.
- ``idle``: N idle dashboard connections plus D streaming devices on one server process;
  memory per connection from the server's RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from common.runtime import latency_tune
from devtools.bench.alarm_latency import (
    CTG_DECELERATION_BPM,
    CTG_HISTORY_SECONDS,
    CTG_KIND,
    CTG_LEAD_SECONDS,
    CTG_TAIL_SECONDS,
    EPISODE_BPM,
    EPISODE_GAP_SECONDS,
    EPISODE_KIND,
    EPISODE_TAIL_SECONDS,
    AlarmEpisodes,
    Episode,
    normal_bpm,
)
from devtools.bench.collector import CollectorPauses
from devtools.bench.fixture import (
    BenchDevice,
    Fixture,
    fixture_alarm_holds,
    fixture_alerts,
    fixture_counts,
    fixture_ctg_deceleration_limit,
    fixture_ctg_history,
)
from devtools.bench.sampler import ResourceSampler
from devtools.bench.servers import ws_url
from devtools.bench.stats import percentiles_ms
from devtools.device_client import (
    MAX_FRAME_ITEMS,
    MAX_MESSAGE_BYTES,
    device_connect,
    device_replies,
    readings_frame,
)

TICK_SECONDS = 0.01
CONNECT_CONCURRENCY = 64
# For measuring: no compression, no keepalive pings, no proxy, an unbounded receive queue.
WS_OPTIONS: dict[str, Any] = {
    "compression": None,
    "proxy": None,
    "open_timeout": 30,
    "ping_interval": None,
    "max_queue": None,
}


@dataclass
class DeviceState:
    bench: BenchDevice
    url: str
    ws: ClientConnection | None = None
    next_seq: int = 1
    sent_at: list[float] = field(default_factory=list)
    recorded_at: list[str] = field(default_factory=list)
    acked: bytearray = field(default_factory=bytearray)
    acked_count: int = 0
    first_unacked: int = 0
    errors: int = 0
    duplicate_acks: int = 0
    abnormal: bool = False
    last_resend: float = 0.0
    # Injected alarm episodes: (start, end) in seconds of the send window, the rate of each
    # seq sent in an episode, the episode being sent, and the device's CTG episode.
    episode_windows: list[tuple[float, float]] = field(default_factory=list)
    in_band: dict[int, int] = field(default_factory=dict)
    episode: Episode | None = None
    ctg_episode: Episode | None = None
    episode_acks: dict[int, Episode] = field(default_factory=dict)  # completing seq: episode
    recorded_epoch: float = 0.0  # the recorded_at of the frame being sent, in epoch seconds


@dataclass
class DashboardState:
    index: int
    url: str
    ward_id: int
    ws: ClientConnection | None = None
    seen: set[int] = field(default_factory=set)
    duplicate_deliveries: int = 0
    foreign: int = 0
    alerts: int = 0
    frames: int = 0
    ready: bool = False


@dataclass
class StreamConfig:
    devices: int
    rate: float
    wards: int
    dashboards: int
    duration: float
    per_frame: int = 1
    abnormal: float = 0.02
    drain: float = 15.0
    resend_after: float = 5.0
    idle_dashboards: int = 0
    warmup: float = 2.0
    episodes: float = 0.05  # fraction of devices with injected alarm episodes
    alarm_hold: int = 3  # those patients' hold time of the high bradycardia band (s)
    alarm_timeout: float = 10.0  # an alert later than this after its completing reading: missed
    clear_seconds: float = 5.0  # the server's ALARM_CLEAR_SECONDS
    ctg_episodes: float = 0.02  # fraction of devices with a prolonged deceleration
    ctg_deceleration: int = 60  # those patients' prolonged_deceleration_seconds
    # Tune this process's collector as the server tunes its own before sending (its pauses
    # would be timed as the server's latency: devtools/bench/collector.py).
    generator_tuned: bool = True


class StreamBench:
    """One asyncio process driving every device and dashboard connection."""

    def __init__(
        self,
        cfg: StreamConfig,
        fixture: Fixture,
        urls: Sequence[str],
        progress: Callable[[str], None] | None = None,
        sampler: ResourceSampler | None = None,
    ) -> None:
        self.cfg = cfg
        self.fixture = fixture
        self.urls = list(urls)
        self.progress = progress
        self.sampler = sampler
        rng = random.Random(7)
        self.devices = [
            DeviceState(
                bench=d,
                url=self.urls[d.index % len(self.urls)],
                abnormal=rng.random() < cfg.abnormal,
            )
            for d in fixture.devices
        ]
        self.by_id = {d.bench.id: d for d in self.devices}
        self.dashboards = [
            DashboardState(
                index=i,
                url=self.urls[i % len(self.urls)],
                ward_id=fixture.ward_ids[i % len(fixture.ward_ids)],
            )
            for i in range(cfg.dashboards)
        ]
        watchers: dict[int, list[int]] = {}
        for dash in self.dashboards:
            watchers.setdefault(dash.ward_id, []).append(dash.index)
        self.alarms = AlarmEpisodes(watchers=watchers, timeout=cfg.alarm_timeout)
        self._plan_episodes(rng, watched=set(watchers))
        self.idle: list[ClientConnection] = []
        self.ack_latency: list[float] = []
        self.e2e_latency: list[float] = []
        # The send time of each latency sample, for the per-second timeline.
        self.ack_sent: list[float] = []
        self.e2e_sent: list[float] = []
        self.sent = 0
        self.resent = 0
        self.frames_sent = 0
        self.acked = 0
        self.delivered = 0
        self.connect_failures = 0
        self.disconnects = 0
        self.error_samples: list[Any] = []
        self.send_window = (0.0, 0.0)
        self.send_started_unix = 0.0  # the wall-clock start of sending (to match server logs)
        self.connect_seconds: dict[str, float] = {}
        self.memory: dict[str, Any] = {}
        self.collector = CollectorPauses()
        self._closing = False

    def _plan_episodes(self, rng: random.Random, *, watched: set[int]) -> None:
        """Pick the episode devices (not abnormal ones, on watched wards) and their episodes:
        in the band for the hold time and a tail, then normal beyond the clear time, repeated
        to the end of the send window, each device's first onset staggered."""
        cfg = self.cfg
        candidates = [d for d in self.devices if not d.abnormal and d.bench.ward_id in watched]
        if not candidates or cfg.episodes <= 0:
            return
        count = min(len(candidates), max(1, round(cfg.episodes * len(self.devices))))
        in_band = cfg.alarm_hold + EPISODE_TAIL_SECONDS
        period = in_band + cfg.clear_seconds + EPISODE_GAP_SECONDS
        # The first onsets spread over one period, or over what the window leaves for one.
        spread = min(period, cfg.duration - in_band - 1.0)
        if spread < 0:
            return
        for dev in rng.sample(candidates, count):
            onset = 1.0 + rng.random() * spread
            while onset + in_band <= cfg.duration:
                dev.episode_windows.append((onset, onset + in_band))
                onset += period
        fetal = [
            d for d in candidates if d.bench.metric == "fetal_heart_rate" and not d.episode_windows
        ]
        if not fetal or cfg.ctg_episodes <= 0:
            return
        if cfg.duration < CTG_LEAD_SECONDS + CTG_TAIL_SECONDS + 2:
            return
        count = min(len(fetal), max(1, round(cfg.ctg_episodes * len(self.devices))))
        for dev in rng.sample(fetal, count):
            dev.ctg_episode = self.alarms.add(
                Episode(
                    device_index=dev.bench.index,
                    patient_id=dev.bench.patient_id,
                    kind=CTG_KIND,
                    hold=float(cfg.ctg_deceleration),
                    family="ctg",
                ),
                ward_id=dev.bench.ward_id,
            )

    @property
    def ctg_patients(self) -> set[int]:
        return {d.bench.patient_id for d in self.devices if d.ctg_episode}

    def _ctg_history(self) -> None:
        """Store the CTG episode patients' history (normal trace, then the deceleration's
        beginning on a whole second), just before streaming starts: the ORM, in a thread."""
        from django.db import connection

        now = time.time()
        onset = math.floor(now) - (self.cfg.ctg_deceleration - CTG_LEAD_SECONDS)
        devices = [d for d in self.devices if d.ctg_episode is not None]
        try:
            fixture_ctg_history(
                [d.bench for d in devices],
                end=datetime.fromtimestamp(now, UTC),
                deceleration_from=datetime.fromtimestamp(onset, UTC),
                deceleration_bpm=CTG_DECELERATION_BPM,
                seconds=CTG_HISTORY_SECONDS,
            )
        finally:
            connection.close()
        for dev in devices:
            assert dev.ctg_episode is not None
            dev.ctg_episode.onset_at = onset

    def _ctg_readings(self, dev: DeviceState, seqs: range, now: float) -> None:
        """A CTG episode's deceleration goes on until CTG_TAIL_SECONDS after its completing
        reading (the first recorded a whole hold after its onset)."""
        episode = dev.ctg_episode
        assert episode is not None
        if episode.onset_at is None:
            return
        if (
            episode.completing_sent is not None
            and now - episode.completing_sent >= CTG_TAIL_SECONDS
        ):
            return
        for seq in seqs:
            dev.in_band[seq] = CTG_DECELERATION_BPM
            episode.reading_sent(seq=seq, recorded_at=dev.recorded_epoch, sent=now)
        _await_completing_ack(dev, episode, seqs)

    @property
    def episode_patients(self) -> set[int]:
        return {d.bench.patient_id for d in self.devices if d.episode_windows}

    def _episode_readings(self, dev: DeviceState, seqs: range, now: float) -> None:
        """Mark a frame's readings (sent at ``now``, recorded at ``dev.recorded_epoch``) in
        the band if the frame falls in an episode of the device, and tell the episode."""
        elapsed = now - self.send_window[0]
        inside = any(start <= elapsed < end for start, end in dev.episode_windows)
        if not inside:
            dev.episode = None
            return
        if dev.episode is None:
            dev.episode = self.alarms.add(
                Episode(
                    device_index=dev.bench.index,
                    patient_id=dev.bench.patient_id,
                    kind=EPISODE_KIND[dev.bench.metric],
                    hold=float(self.cfg.alarm_hold),
                ),
                ward_id=dev.bench.ward_id,
            )
        for seq in seqs:
            dev.in_band[seq] = EPISODE_BPM[dev.bench.metric]
            dev.episode.reading_sent(seq=seq, recorded_at=dev.recorded_epoch, sent=now)
        _await_completing_ack(dev, dev.episode, seqs)

    # Connections
    async def _connect(self, url: str, device_token: str | None = None) -> ClientConnection:
        """A dashboard's connection, or a device's with its token; retried a few times."""
        last: Exception | None = None
        for attempt in range(5):
            try:
                if device_token is None:
                    return await connect(url, max_size=MAX_MESSAGE_BYTES, **WS_OPTIONS)
                return await device_connect(url, device_token, **WS_OPTIONS)
            except (TimeoutError, OSError, ConnectionClosed) as exc:
                last = exc
                await asyncio.sleep(0.2 * (attempt + 1))
        self.connect_failures += 1
        raise RuntimeError(f"cannot connect to {url}: {last!r}")

    async def _open_dashboard(self, url: str, ward_id: int) -> ClientConnection:
        ws = await self._connect(ws_url(url, "/ws/dashboard/"))
        await ws.send(json.dumps({"type": "auth", "token": self.fixture.jwt}))
        await self._expect(ws, "auth.ok")
        await ws.send(json.dumps({"type": "subscribe", "ward": ward_id}))
        await self._expect(ws, "snapshot")
        return ws

    async def _expect(self, ws: ClientConnection, kind: str, wait: float = 30) -> dict:
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"no {kind} frame within {wait:.0f} s")
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), remaining))
            if frame.get("type") == kind:
                return frame
            if frame.get("type") == "error":
                raise RuntimeError(f"server refused: {frame}")

    async def _gather_limited(self, factories: list[Callable[[], Any]]) -> list[Any]:
        semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def run(factory: Callable[[], Any]) -> Any:
            async with semaphore:
                return await factory()

        return await asyncio.gather(*(run(f) for f in factories))

    # Readers
    async def _device_reader(self, dev: DeviceState) -> None:
        ws = dev.ws
        assert ws is not None
        acked = dev.acked
        sent_at = dev.sent_at
        try:
            async for reply in device_replies(ws):
                now = time.perf_counter()
                for seq in reply.acked:
                    i = seq - 1
                    if 0 <= i < len(acked) and not acked[i]:
                        acked[i] = 1
                        dev.acked_count += 1
                        self.acked += 1
                        self.ack_latency.append(now - sent_at[i])
                        self.ack_sent.append(sent_at[i])
                    else:
                        dev.duplicate_acks += 1
                if dev.episode_acks:
                    for seq in reply.acked:
                        if (episode := dev.episode_acks.pop(seq, None)) is not None:
                            episode.completing_acked = now
                if reply.error is not None:
                    dev.errors += 1
                    if len(self.error_samples) < 5:
                        self.error_samples.append(reply.error)
        except ConnectionClosed:
            if not self._closing:
                self.disconnects += 1

    async def _dashboard_reader(self, dash: DashboardState) -> None:
        ws = dash.ws
        assert ws is not None
        by_id = self.by_id
        try:
            async for message in ws:
                now = time.perf_counter()
                frame = json.loads(message)
                kind = frame.get("type")
                dash.frames += 1
                if kind == "readings":
                    for item in frame.get("items", ()):
                        dev = by_id.get(item.get("device"))
                        seq = item.get("seq")
                        if dev is None or not isinstance(seq, int):
                            dash.foreign += 1
                            continue
                        key = dev.bench.index << 32 | seq
                        if key in dash.seen:
                            dash.duplicate_deliveries += 1
                            continue
                        dash.seen.add(key)
                        self.delivered += 1
                        if dev.bench.ward_id != dash.ward_id:
                            dash.foreign += 1
                        if 0 < seq <= len(dev.sent_at):
                            self.e2e_latency.append(now - dev.sent_at[seq - 1])
                            self.e2e_sent.append(dev.sent_at[seq - 1])
                elif kind == "alert":
                    dash.alerts += 1
                    alert = frame.get("alert")
                    if isinstance(alert, dict):
                        self.alarms.alert_frame(dashboard=dash.index, alert=alert, received=now)
        except ConnectionClosed:
            if not self._closing:
                self.disconnects += 1

    # Sending
    def _reading(self, dev: DeviceState, seq: int) -> str:
        # Deterministic per (device, seq), so a resent reading is the same reading. Abnormal
        # devices cross an alarm band for 15 s of every 40 s (long enough to raise an alert).
        recorded_at = dev.recorded_at[seq - 1]
        if seq in dev.in_band:
            bpm = dev.in_band[seq]
        elif dev.abnormal and int(seq / self.cfg.rate) % 40 < 15:
            bpm = 35 if dev.bench.metric == "heart_rate" else 90
        else:
            bpm = normal_bpm(dev.bench.metric, seq, dev.bench.index)
        return (
            f'{{"seq":{seq},"metric":"{dev.bench.metric}","bpm":{bpm},'
            f'"recorded_at":"{recorded_at}"}}'
        )

    async def _send_new(self, dev: DeviceState, count: int, now_iso: str, now_epoch: float) -> None:
        ws = dev.ws
        if ws is None:
            return
        items = []
        now = time.perf_counter()
        if dev.episode_windows:
            dev.recorded_epoch = now_epoch
            self._episode_readings(dev, range(dev.next_seq, dev.next_seq + count), now)
        elif dev.ctg_episode is not None:
            dev.recorded_epoch = now_epoch
            self._ctg_readings(dev, range(dev.next_seq, dev.next_seq + count), now)
        for _ in range(count):
            seq = dev.next_seq
            dev.next_seq += 1
            dev.sent_at.append(now)
            dev.recorded_at.append(now_iso)
            dev.acked.append(0)
            items.append(self._reading(dev, seq))
        self.sent += count
        self.frames_sent += 1
        try:
            await ws.send(readings_frame(items))
        except ConnectionClosed:
            self.disconnects += 1
            dev.ws = None

    async def _resend_unacked(self, dev: DeviceState, older_than: float) -> None:
        """Resend what was not acked in time, like a device; at most once per resend period."""
        ws = dev.ws
        if ws is None or dev.last_resend > older_than:
            return
        acked = dev.acked
        while dev.first_unacked < len(acked) and acked[dev.first_unacked]:
            dev.first_unacked += 1
        missing = [
            i
            for i in range(dev.first_unacked, len(acked))
            if not acked[i] and dev.sent_at[i] <= older_than
        ]
        if not missing:
            return
        dev.last_resend = time.perf_counter()
        for start in range(0, len(missing), MAX_FRAME_ITEMS):
            chunk = missing[start : start + MAX_FRAME_ITEMS]
            self.resent += len(chunk)
            try:
                await ws.send(readings_frame([self._reading(dev, i + 1) for i in chunk]))
            except ConnectionClosed:
                dev.ws = None
                return

    async def _sender(self) -> None:
        cfg = self.cfg
        per_frame = max(1, cfg.per_frame)
        frame_period = per_frame / cfg.rate
        slots = max(1, round(frame_period / TICK_SECONDS))
        tick = frame_period / slots
        by_slot: list[list[DeviceState]] = [[] for _ in range(slots)]
        for dev in self.devices:
            by_slot[dev.bench.index % slots].append(dev)
        total_ticks = round(cfg.duration / tick)
        start = time.perf_counter()
        self.send_window = (start, start)
        self.send_started_unix = time.time()
        next_resend_check = start + 1.0
        for n in range(total_ticks):
            target = start + n * tick
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now_dt = datetime.now(UTC)
            now_iso, now_epoch = now_dt.isoformat(), now_dt.timestamp()
            for dev in by_slot[n % slots]:
                await self._send_new(dev, per_frame, now_iso, now_epoch)
            now = time.perf_counter()
            if now >= next_resend_check:
                next_resend_check = now + 1.0
                for dev in self.devices:
                    await self._resend_unacked(dev, now - cfg.resend_after)
        self.send_window = (start, time.perf_counter())

    async def _drain(self) -> None:
        """Wait for outstanding acks (resending what is late) and for dashboard deliveries."""
        deadline = time.perf_counter() + self.cfg.drain
        next_resend = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            if (
                self.acked >= self.sent
                and self._deliveries_complete()
                and self.alarms.settled(time.perf_counter())
            ):
                return
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            if now >= next_resend and self.acked < self.sent:
                next_resend = now + 1.0
                for dev in self.devices:
                    await self._resend_unacked(dev, now - self.cfg.resend_after)
        # One more short wait for late dashboard frames after the acks settled.
        await asyncio.sleep(0.2)

    def _deliveries_complete(self) -> bool:
        acked_per_ward: dict[int, int] = {}
        for dev in self.devices:
            acked_per_ward[dev.bench.ward_id] = (
                acked_per_ward.get(dev.bench.ward_id, 0) + dev.acked_count
            )
        return all(len(d.seen) >= acked_per_ward.get(d.ward_id, 0) for d in self.dashboards)

    async def _progress(self) -> None:
        if self.progress is None:
            return
        start = time.perf_counter()
        width = 30
        while True:
            await asyncio.sleep(1.0)
            elapsed = time.perf_counter() - start
            done = min(1.0, elapsed / max(self.cfg.duration, 0.001))
            bar = "#" * int(done * width) + "." * (width - int(done * width))
            recent = self.ack_latency[-2000:]
            p99 = percentiles_ms(recent)["p99"]
            self.progress(
                f"[{bar}] {elapsed:5.0f}/{self.cfg.duration:.0f} s  sent {self.sent}  "
                f"acked {self.acked}  delivered {self.delivered}  ack p99 {p99} ms"
            )

    async def run(self) -> dict[str, Any]:
        readers: list[asyncio.Task] = []
        progress_task: asyncio.Task | None = None
        try:
            if self.cfg.idle_dashboards:
                await self._open_idle()
            # Dashboards first: every reading sent afterwards is expected on them.
            t0 = time.perf_counter()
            opened = await self._gather_limited(
                [partial(self._open_dashboard, d.url, d.ward_id) for d in self.dashboards]
            )
            for dash, ws in zip(self.dashboards, opened, strict=True):
                dash.ws = ws
                readers.append(asyncio.create_task(self._dashboard_reader(dash)))
            self.connect_seconds["dashboards"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            sockets = await self._gather_limited(
                [
                    partial(self._connect, ws_url(d.url, "/ws/devices/"), d.bench.token)
                    for d in self.devices
                ]
            )
            for dev, ws in zip(self.devices, sockets, strict=True):
                dev.ws = ws
                readers.append(asyncio.create_task(self._device_reader(dev)))
            self.connect_seconds["devices"] = round(time.perf_counter() - t0, 2)
            # Let the server finish its per-connection work (presence, status broadcasts)
            # so the measurement is of the steady stream, not of the connection burst.
            await asyncio.sleep(self.cfg.warmup)
            if self.ctg_patients:
                await asyncio.to_thread(self._ctg_history)
            if self.cfg.idle_dashboards and self.sampler:
                self.memory["rss_with_connections"] = sum(self.sampler.rss_now().values())
            if self.sampler:
                self.sampler.start()
            progress_task = asyncio.create_task(self._progress())
            if self.cfg.generator_tuned:
                latency_tune()
            with self.collector:
                await self._sender()
                await self._drain()
        finally:
            if progress_task is not None:
                progress_task.cancel()
            self._closing = True
            closers = [d.ws for d in self.devices if d.ws] + [d.ws for d in self.dashboards if d.ws]
            closers += self.idle
            await self._gather_limited([partial(_close, w) for w in closers])
            for task in readers:
                task.cancel()
        return self.result()

    async def _open_idle(self) -> None:
        assert self.sampler is not None
        url = self.urls[0]
        # Warm the code paths (Django apps, consumers, channel layer) before the baseline.
        warm = await self._open_dashboard(url, self.fixture.idle_ward_id)
        await asyncio.sleep(1.0)
        self.memory["rss_baseline"] = sum(self.sampler.rss_now().values())
        self.idle.append(warm)
        t0 = time.perf_counter()
        self.idle += await self._gather_limited(
            [
                (lambda: self._open_dashboard(url, self.fixture.idle_ward_id))
                for _ in range(self.cfg.idle_dashboards - 1)
            ]
        )
        self.connect_seconds["idle_dashboards"] = round(time.perf_counter() - t0, 2)
        await asyncio.sleep(2.0)
        self.memory["rss_with_dashboards"] = sum(self.sampler.rss_now().values())

    def result(self) -> dict[str, Any]:
        start, end = self.send_window
        window = max(end - start, 1e-9)
        dashboards = [
            {
                "ward": d.ward_id,
                "delivered": len(d.seen),
                "duplicates": d.duplicate_deliveries,
                "foreign": d.foreign,
                "alerts": d.alerts,
            }
            for d in self.dashboards
        ]
        return {
            "sent": self.sent,
            "resent": self.resent,
            "frames_sent": self.frames_sent,
            "acked": self.acked,
            "duplicate_acks": sum(d.duplicate_acks for d in self.devices),
            "rejected": sum(d.errors for d in self.devices),
            "error_samples": self.error_samples,
            "delivered": self.delivered,
            "duplicate_deliveries": sum(d.duplicate_deliveries for d in self.dashboards),
            "alerts_received": sum(d.alerts for d in self.dashboards),
            "alarm_latency": self.alarms.result(),
            "send_seconds": round(window, 2),
            "send_rate_per_s": round(self.sent / window, 1),
            "ack_ms": percentiles_ms(self.ack_latency),
            "e2e_ms": percentiles_ms(self.e2e_latency),
            "connect_seconds": self.connect_seconds,
            "connect_failures": self.connect_failures,
            "disconnects": self.disconnects,
            "dashboards": dashboards,
            "send_started_unix": round(self.send_started_unix, 3),
            "generator_gc": {"tuned": self.cfg.generator_tuned, **self.collector.result()},
            "timeline": self.timeline(),
        }

    def timeline(self) -> list[dict[str, Any]]:
        """Per second of the send window: how many readings were sent in it and the p99 and
        maximum of their ack and end-to-end latency, so a periodic stall shows where it is."""
        start = self.send_window[0]

        def by_second(sent: list[float], latency: list[float]) -> dict[int, list[float]]:
            buckets: dict[int, list[float]] = {}
            for at, value in zip(sent, latency, strict=True):
                buckets.setdefault(int(at - start), []).append(value)
            return buckets

        acks = by_second(self.ack_sent, self.ack_latency)
        e2e = by_second(self.e2e_sent, self.e2e_latency)
        rows = []
        for second in sorted(set(acks) | set(e2e)):
            ack = percentiles_ms(acks.get(second, []))
            end = percentiles_ms(e2e.get(second, []))
            rows.append(
                {
                    "second": second,
                    "acked": len(acks.get(second, [])),
                    "ack_p99_ms": ack["p99"],
                    "ack_max_ms": ack["max"],
                    "e2e_p99_ms": end["p99"],
                    "e2e_max_ms": end["max"],
                }
            )
        return rows


def _await_completing_ack(dev: DeviceState, episode: Episode, seqs: range) -> None:
    """If the episode's completing reading is among ``seqs``, note its ack when it comes."""
    seq = episode.completing_seq
    if seq is not None and seq in seqs:
        dev.episode_acks[seq] = episode


async def _close(ws: ClientConnection) -> None:
    # Closing at the end; the server may be gone already.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), 5)


def stream_run(
    cfg: StreamConfig,
    fixture: Fixture,
    urls: Sequence[str],
    *,
    pids: Sequence[int],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the streaming benchmark and join its counters with what the database stored."""
    sampler = ResourceSampler(pids)
    bench = StreamBench(cfg, fixture, urls, progress=progress, sampler=sampler)
    if bench.episode_patients:
        fixture_alarm_holds(
            fixture, patient_ids=bench.episode_patients, hold_seconds=cfg.alarm_hold
        )
    if bench.ctg_patients:
        fixture_ctg_deceleration_limit(patient_ids=bench.ctg_patients, seconds=cfg.ctg_deceleration)
    try:
        result = asyncio.run(bench.run())
    finally:
        resources = sampler.stop() if sampler._thread.is_alive() else None
    counts = fixture_counts(fixture)
    expected = sum(counts["per_ward"].get(d.ward_id, 0) for d in bench.dashboards)
    # Alarms are evaluated by the evaluator process, behind the stream: count the alerts
    # once it has caught up (or stopped making progress).
    evaluator = evaluator_catch_up()
    result.update(
        stored=counts["stored"],
        duplicates_stored=counts["duplicates_stored"],
        expected_deliveries=expected,
        readings_per_s=round(counts["stored"] / max(result["send_seconds"], 1e-9), 1),
        alerts_raised=fixture_alerts(fixture),
        alarm_evaluator=evaluator,
        server=resources,
    )
    for dash in result["dashboards"]:
        dash["expected"] = counts["per_ward"].get(dash["ward"], 0)
    if cfg.idle_dashboards:
        mem = bench.memory
        baseline = mem.get("rss_baseline", 0)
        with_dash = mem.get("rss_with_dashboards", 0)
        peak = resources["peak_rss_mb"] * 2**20 if resources else 0
        connections = cfg.idle_dashboards + cfg.devices + cfg.dashboards
        result["memory"] = {
            "idle_dashboards": cfg.idle_dashboards,
            "connections": connections,
            "rss_baseline_mb": round(baseline / 2**20, 1),
            "rss_with_idle_dashboards_mb": round(with_dash / 2**20, 1),
            "rss_peak_streaming_mb": round(peak / 2**20, 1),
            "kb_per_idle_dashboard": round((with_dash - baseline) / 1024 / cfg.idle_dashboards, 1),
            "kb_per_connection": round((peak - baseline) / 1024 / max(connections, 1), 1),
        }
    return result


def evaluator_catch_up(*, stall_seconds: float = 10.0) -> dict[str, Any]:
    """How far behind the alarm evaluator was when sending ended, and how long it took to
    evaluate the rest: polls the readings stream's lag until nothing waits, or until the
    backlog has not shrunk for ``stall_seconds`` (no evaluator running)."""
    from monitoring.stream.lag import stream_lag

    def waiting() -> int:
        return sum(row.lag + row.pending for row in stream_lag())

    started = time.monotonic()
    at_end = last = waiting()
    progressed = started
    while last and time.monotonic() - progressed < stall_seconds:
        time.sleep(0.1)
        now = waiting()
        if now < last:
            progressed = time.monotonic()
        last = now
    return {
        "behind_at_end": at_end,
        "caught_up_s": round(time.monotonic() - started, 2) if not last else None,
        "left_unevaluated": last,
    }
