"""Load generator and measurements behind ``manage.py loadtest`` (``make bench``).

It drives a running server over real WebSockets and HTTP, from one asyncio process:

- ``stream``: D devices send readings at R Hz each on W wards while B dashboards watch those
  wards. Counts sends, acks (per device), rows stored (in the database), duplicates, deliveries
  per dashboard; measures ack latency (send -> ack) and end-to-end latency (send -> dashboard
  receipt). Send times are kept per (device, seq) in this process: one clock.
- ``idle``: N idle dashboard connections plus D streaming devices on one server process;
  memory per connection from the server's RSS.
- ``rest``: POST /api/records/ batches with a device token; readings stored per second.
- ``history``: 24 h of 4 Hz readings for one patient, then the time of the 1-minute bucketed
  history request.

The fixture (a bench place, wards, patients, devices with tokens, a nurse and a JWT) is made
through the ORM in this process and removed afterwards unless ``keep`` is set. ORM calls run
outside the event loop; everything on the wire runs inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from config.net import free_port

ROOT = Path(__file__).resolve().parents[2]
TICK_SECONDS = 0.01
CONNECT_CONCURRENCY = 64
PERCENTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))

Progress = Callable[[str], None]


# --- Fixture (sync ORM) -----------------------------------------------------------------------
@dataclass
class BenchDevice:
    index: int
    id: int
    token: str
    patient_id: int
    ward_id: int
    metric: str


@dataclass
class Fixture:
    label: str
    place_id: int
    ward_ids: list[int]
    idle_ward_id: int
    user_id: int
    jwt: str
    devices: list[BenchDevice]

    @property
    def device_ids(self) -> list[int]:
        return [d.id for d in self.devices]


def fixture_create(*, devices: int, wards: int, label: str | None = None) -> Fixture:
    """A bench place with ``wards`` wards (+1 idle ward), one patient and device per device."""
    from django.db import transaction
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import Role, User
    from clinical.models import Patient, Place, Ward
    from monitoring.models import Device
    from monitoring.tokens import token_generate, token_hash

    label = label or f"bench-{uuid.uuid4().hex[:8]}"
    with transaction.atomic():
        place = Place.objects.create(name=f"Bench {label}", kind=Place.Kind.HOSPITAL)
        ward_objs = Ward.objects.bulk_create(
            [Ward(place=place, name=f"Bench ward {i + 1}") for i in range(max(1, wards))]
        )
        idle_ward = Ward.objects.create(place=place, name="Bench idle ward")
        patients = Patient.objects.bulk_create(
            [
                Patient(
                    name=f"Bench patient {i + 1}",
                    mrn=f"{label}-{i + 1:06d}",
                    sex=Patient.Sex.FEMALE,
                    # Every other patient is obstetric and streams fetal heart rate.
                    monitoring_profile=(
                        Patient.Profile.OBSTETRIC if i % 2 else Patient.Profile.ADULT
                    ),
                    place=place,
                    ward=ward_objs[i % len(ward_objs)],
                    bed=f"B{i + 1}",
                )
                for i in range(devices)
            ]
        )
        tokens = [token_generate() for _ in range(devices)]
        device_objs = Device.objects.bulk_create(
            [
                Device(
                    serial=f"{label}-{i + 1:06d}",
                    model="Bench",
                    place=place,
                    patient=patients[i],
                    token_hash=token_hash(tokens[i]),
                )
                for i in range(devices)
            ]
        )
        user = User.objects.create_user(
            email=f"{label}@bench.invalid",
            password=None,
            role=Role.NURSE,
            first_name="Bench",
            last_name="Nurse",
        )
        user.places.set([place])
    # A long-lived access token so long runs keep a valid one.
    access = AccessToken.for_user(user)
    access.set_exp(lifetime=timedelta(hours=6))
    return Fixture(
        label=label,
        place_id=place.id,
        ward_ids=[w.id for w in ward_objs],
        idle_ward_id=idle_ward.id,
        user_id=user.id,
        jwt=str(access),
        devices=[
            BenchDevice(
                index=i,
                id=device_objs[i].id,
                token=tokens[i],
                patient_id=patients[i].id,
                ward_id=patients[i].ward_id,
                metric=(
                    "fetal_heart_rate"
                    if patients[i].monitoring_profile == Patient.Profile.OBSTETRIC
                    else "heart_rate"
                ),
            )
            for i in range(devices)
        ],
    )


def fixture_counts(fixture: Fixture) -> dict[str, Any]:
    """Readings stored for the fixture's devices, per ward, and duplicate (device, seq) rows."""
    from django.db.models import Count

    from monitoring.models import Reading

    rows = Reading.objects.filter(device_id__in=fixture.device_ids)
    per_ward: dict[int, int] = {w: 0 for w in fixture.ward_ids}
    by_patient_ward = {d.patient_id: d.ward_id for d in fixture.devices}
    stored = 0
    for item in rows.values("patient_id").annotate(n=Count("id")):
        stored += item["n"]
        ward_id = by_patient_ward.get(item["patient_id"])
        if ward_id is not None:
            per_ward[ward_id] = per_ward.get(ward_id, 0) + item["n"]
    duplicates = sum(
        item["n"] - 1
        for item in rows.values("device_id", "seq").annotate(n=Count("id")).filter(n__gt=1)
    )
    return {"stored": stored, "duplicates_stored": duplicates, "per_ward": per_ward}


def fixture_alerts(fixture: Fixture) -> int:
    from clinical.models import Alert

    return Alert.objects.filter(patient__place_id=fixture.place_id).count()


def fixture_delete(fixture: Fixture) -> None:
    from django.db import transaction

    from accounts.models import User
    from clinical.models import Patient, Place, Ward
    from monitoring.models import Device, Reading

    with transaction.atomic():
        patient_ids = [d.patient_id for d in fixture.devices]
        Reading.objects.filter(patient_id__in=patient_ids).delete()
        Device.objects.filter(place_id=fixture.place_id).delete()
        Patient.objects.filter(place_id=fixture.place_id).delete()
        Ward.objects.filter(place_id=fixture.place_id).delete()
        User.objects.filter(id=fixture.user_id).delete()
        Place.objects.filter(id=fixture.place_id).delete()


def database_url() -> str:
    """The URL of the database this process uses, for servers that must see the same one."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s.get("USER") or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    host = s.get("HOST") or "localhost"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{s['NAME']}"


# --- Statistics ------------------------------------------------------------------------------
def percentiles_ms(samples: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds (nearest rank) of samples in seconds."""
    if not samples:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(samples)
    n = len(ordered)
    result: dict[str, float | None] = {}
    for name, p in PERCENTILES:
        rank = max(1, min(n, int(-(-p * n // 100))))
        result[name] = round(ordered[rank - 1] * 1000, 2)
    result["max"] = round(ordered[-1] * 1000, 2)
    return result


# --- Server processes ------------------------------------------------------------------------
def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ServerSet:
    """Daphne processes started by the benchmark on free ports, sharing Redis and the DB."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self.urls: list[str] = []
        self.logs: list[Path] = []
        self.redis: subprocess.Popen | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def start(
        self,
        count: int,
        *,
        env: dict[str, str],
        log_dir: Path,
        app: str = "config.asgi:application",
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            port = free_port()
            log = log_dir / f"daphne-{port}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "daphne",
                        "-b",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        app,
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_raise_fd_limit,
                )
            self.processes.append(process)
            self.urls.append(f"http://127.0.0.1:{port}")
            self.logs.append(log)
        for process, url, log in zip(self.processes, self.urls, self.logs, strict=True):
            wait_http(url, process=process, log=log)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(timeout=10)


def wait_http(
    url: str, *, process: subprocess.Popen | None = None, log: Path | None, timeout: float = 60
) -> None:
    """Wait until the server answers HTTP (any status) and has loaded the application."""
    parsed = urlparse(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-2000:] if log else ""
            raise RuntimeError(f"server {url} exited with {process.returncode}:\n{tail}")
        try:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
            conn.request("GET", "/api/schema/?format=json")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server {url} did not answer within {timeout:.0f} s")


def ws_url(base: str, path: str) -> str:
    parsed = urlparse(base)
    scheme = "wss" if parsed.scheme in {"https", "wss"} else "ws"
    return f"{scheme}://{parsed.netloc}{path}"


# --- Resource sampling -----------------------------------------------------------------------
class ResourceSampler:
    """Samples RSS and CPU of the server PIDs in a thread; system-wide CPU and who used it."""

    def __init__(self, pids: Sequence[int], interval: float = 0.25) -> None:
        self.processes = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                self.processes.append(psutil.Process(pid))
        self.interval = interval
        self.peak_rss: dict[int, int] = {p.pid: 0 for p in self.processes}
        self.last_rss: dict[int, int] = {p.pid: 0 for p in self.processes}
        self._cpu_start: dict[int, float] = {}
        self._cpu_end: dict[int, float] = {}
        self._by_name_start: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = 0.0
        self._t1 = 0.0
        self._self_cpu0 = 0.0
        self._self_cpu1 = 0.0

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system

    def rss_now(self) -> dict[int, int]:
        out = {}
        for p in self.processes:
            try:
                out[p.pid] = p.memory_info().rss
            except psutil.Error:
                out[p.pid] = 0
        return out

    def _all_cpu(self) -> dict[int, tuple[str, float]]:
        result = {}
        for p in psutil.process_iter(["name", "cpu_times", "cmdline"]):
            try:
                times = p.info["cpu_times"]
                if times is None:
                    continue
                result[p.pid] = (_process_kind(p.info), times.user + times.system)
            except psutil.Error:
                continue
        return result

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._self_cpu0 = time.process_time()
        self._machine0 = psutil.cpu_times()
        psutil.cpu_percent(interval=None)
        self._by_name_start = self._all_cpu()
        for p in self.processes:
            try:
                self._cpu_start[p.pid] = self._cpu(p)
            except psutil.Error:
                self._cpu_start[p.pid] = 0.0
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid, rss in self.rss_now().items():
                self.last_rss[pid] = rss
                self.peak_rss[pid] = max(self.peak_rss[pid], rss)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=5)
        self._t1 = time.monotonic()
        self._self_cpu1 = time.process_time()
        for p in self.processes:
            try:
                self._cpu_end[p.pid] = self._cpu(p)
            except psutil.Error:
                self._cpu_end[p.pid] = self._cpu_start.get(p.pid, 0.0)
        system_cpu = psutil.cpu_percent(interval=None)
        machine = _machine_cpu(self._machine0, psutil.cpu_times())
        by_kind_end = self._all_cpu()
        by_kind: dict[str, float] = {}
        for pid, (kind, cpu) in by_kind_end.items():
            start = self._by_name_start.get(pid)
            delta = cpu - (start[1] if start and start[0] == kind else 0.0)
            if pid in self._cpu_start or pid == os.getpid():
                continue
            by_kind[kind] = by_kind.get(kind, 0.0) + max(0.0, delta)
        wall = self._t1 - self._t0
        return {
            "wall_s": round(wall, 2),
            "processes": [
                {
                    "pid": p.pid,
                    "peak_rss_mb": round(self.peak_rss[p.pid] / 2**20, 1),
                    "cpu_s": round(self._cpu_end[p.pid] - self._cpu_start[p.pid], 2),
                }
                for p in self.processes
            ],
            "peak_rss_mb": round(sum(self.peak_rss.values()) / 2**20, 1),
            "cpu_s": round(sum(self._cpu_end[p] - self._cpu_start[p] for p in self._cpu_start), 2),
            "generator_cpu_s": round(self._self_cpu1 - self._self_cpu0, 2),
            "system_cpu_percent": system_cpu,
            "machine_cpu_s": machine,
            "other_cpu_s": {k: round(v, 2) for k, v in sorted(by_kind.items()) if v >= 0.05},
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }


def _machine_cpu(before: Any, after: Any) -> dict[str, float]:
    """CPU seconds of the whole machine (all cores) between two psutil.cpu_times() samples:
    busy includes every process, also those that started and ended during the run."""
    delta = {f: getattr(after, f) - getattr(before, f) for f in after._fields}
    idle = delta.get("idle", 0.0) + delta.get("iowait", 0.0)
    total = sum(delta.values()) - delta.get("guest", 0.0) - delta.get("guest_nice", 0.0)
    return {
        "total": round(total, 2),
        "busy": round(total - idle, 2),
        "steal": round(delta.get("steal", 0.0), 2),
    }


def _process_kind(info: dict[str, Any]) -> str:
    name = info.get("name") or "?"
    if name.startswith("postgres"):
        return "postgres"
    if name.startswith("redis"):
        return "redis"
    cmdline = " ".join(info.get("cmdline") or [])
    if "pytest" in cmdline:
        return "pytest (other test runs)"
    if "daphne" in cmdline:
        return "daphne (not benchmarked)"
    if "celery" in cmdline:
        return "celery"
    if name.startswith("python"):
        return "python (other)"
    return name


# --- Streaming benchmark ---------------------------------------------------------------------
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


class StreamBench:
    """One asyncio process driving every device and dashboard connection."""

    def __init__(
        self,
        cfg: StreamConfig,
        fixture: Fixture,
        urls: Sequence[str],
        progress: Progress | None = None,
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
        self.idle: list[ClientConnection] = []
        self.ack_latency: list[float] = []
        self.e2e_latency: list[float] = []
        self.sent = 0
        self.resent = 0
        self.frames_sent = 0
        self.acked = 0
        self.delivered = 0
        self.connect_failures = 0
        self.disconnects = 0
        self.error_samples: list[Any] = []
        self.send_window = (0.0, 0.0)
        self.connect_seconds: dict[str, float] = {}
        self.memory: dict[str, Any] = {}
        self._closing = False

    # Connections
    async def _connect(self, url: str, headers: dict[str, str] | None = None) -> ClientConnection:
        last: Exception | None = None
        for attempt in range(5):
            try:
                return await connect(
                    url,
                    additional_headers=headers,
                    compression=None,
                    proxy=None,
                    open_timeout=30,
                    ping_interval=None,
                    max_queue=None,
                    max_size=2**22,
                )
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
            frame = json.loads(await asyncio.wait_for(ws.recv(), remaining))
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
        try:
            async for message in ws:
                now = time.perf_counter()
                frame = json.loads(message)
                kind = frame.get("type")
                if kind == "ack":
                    acked = dev.acked
                    sent_at = dev.sent_at
                    for seq in frame.get("seqs", ()):
                        i = seq - 1
                        if 0 <= i < len(acked) and not acked[i]:
                            acked[i] = 1
                            dev.acked_count += 1
                            self.acked += 1
                            self.ack_latency.append(now - sent_at[i])
                        else:
                            dev.duplicate_acks += 1
                elif kind == "error":
                    dev.errors += 1
                    if len(self.error_samples) < 5:
                        self.error_samples.append(frame)
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
                elif kind == "alert":
                    dash.alerts += 1
        except ConnectionClosed:
            if not self._closing:
                self.disconnects += 1

    # Sending
    def _reading(self, dev: DeviceState, seq: int) -> str:
        # Deterministic per (device, seq), so a resent reading is the same reading. Abnormal
        # devices cross an alarm band for 15 s of every 40 s (long enough to raise an alert).
        recorded_at = dev.recorded_at[seq - 1]
        if dev.abnormal and int(seq / self.cfg.rate) % 40 < 15:
            bpm = 35 if dev.bench.metric == "heart_rate" else 90
        else:
            base = 80 if dev.bench.metric == "heart_rate" else 140
            bpm = base + (seq * 7 + dev.bench.index) % 11 - 5
        return (
            f'{{"seq":{seq},"metric":"{dev.bench.metric}","bpm":{bpm},'
            f'"recorded_at":"{recorded_at}"}}'
        )

    async def _send_new(self, dev: DeviceState, count: int, now_iso: str) -> None:
        ws = dev.ws
        if ws is None:
            return
        items = []
        now = time.perf_counter()
        for _ in range(count):
            seq = dev.next_seq
            dev.next_seq += 1
            dev.sent_at.append(now)
            dev.recorded_at.append(now_iso)
            dev.acked.append(0)
            items.append(self._reading(dev, seq))
        if count == 1:
            frame = '{"type":"reading",' + items[0][1:]
        else:
            frame = '{"type":"readings","items":[' + ",".join(items) + "]}"
        self.sent += count
        self.frames_sent += 1
        try:
            await ws.send(frame)
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
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            items = ",".join(self._reading(dev, i + 1) for i in chunk)
            self.resent += len(chunk)
            try:
                await ws.send('{"type":"readings","items":[' + items + "]}")
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
        next_resend_check = start + 1.0
        for n in range(total_ticks):
            target = start + n * tick
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now_iso = datetime.now(UTC).isoformat()
            for dev in by_slot[n % slots]:
                await self._send_new(dev, per_frame, now_iso)
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
            if self.acked >= self.sent and self._deliveries_complete():
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
                [(lambda d=d: self._open_dashboard(d.url, d.ward_id)) for d in self.dashboards]
            )
            for dash, ws in zip(self.dashboards, opened, strict=True):
                dash.ws = ws
                readers.append(asyncio.create_task(self._dashboard_reader(dash)))
            self.connect_seconds["dashboards"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            sockets = await self._gather_limited(
                [
                    (
                        lambda d=d: self._connect(
                            ws_url(d.url, "/ws/devices/"),
                            {"Authorization": f"Device {d.bench.token}"},
                        )
                    )
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
            if self.cfg.idle_dashboards and self.sampler:
                self.memory["rss_with_connections"] = sum(self.sampler.rss_now().values())
            if self.sampler:
                self.sampler.start()
            progress_task = asyncio.create_task(self._progress())
            await self._sender()
            await self._drain()
        finally:
            if progress_task:
                progress_task.cancel()
            self._closing = True
            closers = [d.ws for d in self.devices if d.ws] + [d.ws for d in self.dashboards if d.ws]
            closers += self.idle
            await self._gather_limited([(lambda w=w: _close(w)) for w in closers])
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
            "send_seconds": round(window, 2),
            "send_rate_per_s": round(self.sent / window, 1),
            "ack_ms": percentiles_ms(self.ack_latency),
            "e2e_ms": percentiles_ms(self.e2e_latency),
            "connect_seconds": self.connect_seconds,
            "connect_failures": self.connect_failures,
            "disconnects": self.disconnects,
            "dashboards": dashboards,
        }


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
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the streaming benchmark and join its counters with what the database stored."""
    sampler = ResourceSampler(pids)
    bench = StreamBench(cfg, fixture, urls, progress=progress, sampler=sampler)
    try:
        result = asyncio.run(bench.run())
    finally:
        resources = sampler.stop() if sampler._thread.is_alive() else None
    counts = fixture_counts(fixture)
    expected = sum(counts["per_ward"].get(d.ward_id, 0) for d in bench.dashboards)
    result.update(
        stored=counts["stored"],
        duplicates_stored=counts["duplicates_stored"],
        expected_deliveries=expected,
        readings_per_s=round(counts["stored"] / max(result["send_seconds"], 1e-9), 1),
        alerts_raised=fixture_alerts(fixture),
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


# --- REST batches ----------------------------------------------------------------------------
def rest_run(
    fixture: Fixture,
    urls: Sequence[str],
    *,
    batch: int,
    clients: int,
    duration: float,
    pids: Sequence[int],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Threads POST batches of ``batch`` readings to /api/records/ with device tokens."""
    sampler = ResourceSampler(pids)
    lock = threading.Lock()
    totals = {"requests": 0, "accepted": 0, "failed": 0}
    latencies: list[float] = []
    failures: list[str] = []
    devices = fixture.devices

    def worker(index: int) -> None:
        url = urlparse(urls[index % len(urls)])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        mine = devices[index::clients] or devices[:1]
        seqs = {d.id: 1 for d in mine}
        n = 0
        while time.perf_counter() < stop_at:
            dev = mine[n % len(mine)]
            n += 1
            first = seqs[dev.id]
            seqs[dev.id] += batch
            base = datetime.now(UTC) - timedelta(seconds=batch / 4)
            body = json.dumps(
                [
                    {
                        "metric": dev.metric,
                        "bpm": 140 if dev.metric == "fetal_heart_rate" else 80,
                        "recorded_at": (base + timedelta(seconds=i / 4)).isoformat(),
                        "seq": first + i,
                    }
                    for i in range(batch)
                ]
            )
            t0 = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    "/api/records/",
                    body=body,
                    headers={
                        "Authorization": f"Device {dev.token}",
                        "Content-Type": "application/json",
                    },
                )
                response = conn.getresponse()
                payload = response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException) as exc:
                ok, payload = False, repr(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            with lock:
                totals["requests"] += 1
                latencies.append(time.perf_counter() - t0)
                if ok:
                    totals["accepted"] += batch
                else:
                    totals["failed"] += 1
                    if len(failures) < 3:
                        failures.append(payload[:300].decode(errors="replace"))
        conn.close()

    sampler.start()
    start = time.perf_counter()
    stop_at = start + duration
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1.0)
        if progress:
            progress(
                f"REST {time.perf_counter() - start:5.0f}/{duration:.0f} s  "
                f"requests {totals['requests']}  accepted {totals['accepted']}"
            )
    elapsed = time.perf_counter() - start
    resources = sampler.stop()
    counts = fixture_counts(fixture)
    return {
        "mode": "rest",
        "batch": batch,
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": totals["requests"],
        "failed_requests": totals["failed"],
        "failure_samples": failures,
        "sent": totals["requests"] * batch,
        "accepted": totals["accepted"],
        "stored": counts["stored"],
        "duplicates_stored": counts["duplicates_stored"],
        "readings_per_s": round(counts["stored"] / elapsed, 1),
        "request_ms": percentiles_ms(latencies),
        "server": resources,
    }


# --- History aggregation ---------------------------------------------------------------------
def history_fill(fixture: Fixture, *, hours: float = 24, rate: float = 4.0) -> tuple[int, float]:
    """Insert ``hours`` of readings at ``rate`` Hz for every fixture patient through
    readings_store, interleaved in time as a ward of monitors writes them (so one patient's
    rows are spread over the table's pages like in production). Returns (rows, seconds)."""
    from monitoring.ingest import ReadingIn, readings_store

    per_device = int(hours * 3600 * rate)
    start = datetime.now(UTC) - timedelta(hours=hours)
    step = 1.0 / rate
    t0 = time.perf_counter()
    slice_len = max(1, 10_000 // len(fixture.devices))
    for first in range(0, per_device, slice_len):
        readings_store(
            readings=[
                ReadingIn(
                    patient_id=dev.patient_id,
                    device_id=dev.id,
                    metric=dev.metric,
                    bpm=(140 if dev.metric == "fetal_heart_rate" else 80) + (i * 7) % 11 - 5,
                    recorded_at=start + timedelta(seconds=i * step),
                    seq=i + 1,
                )
                for i in range(first, min(per_device, first + slice_len))
                for dev in fixture.devices
            ]
        )
    return per_device * len(fixture.devices), time.perf_counter() - t0


def history_run(
    fixture: Fixture,
    url: str,
    *,
    hours: float = 24,
    repeat: int = 5,
    query: str = "bucket=60&from={start}&to={end}",
) -> dict[str, Any]:
    """Fill the history, then time the bucketed GET (following ``next`` links) ``repeat`` times."""
    from django.db import connection

    inserted, fill_s = history_fill(fixture, hours=hours)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE monitoring_reading")
    dev = fixture.devices[0]
    end = datetime.now(UTC)
    start = end - timedelta(hours=hours)
    params = query.format(
        start=start.isoformat().replace("+00:00", "Z"), end=end.isoformat().replace("+00:00", "Z")
    )
    parsed = urlparse(url)
    timings: list[float] = []
    buckets = pages = 0
    status = 0
    sample: Any = None
    for _ in range(repeat):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        path: str | None = f"/api/records/{dev.patient_id}/?{params}"
        buckets = pages = 0
        t0 = time.perf_counter()
        while path:
            conn.request("GET", path, headers={"Authorization": f"Bearer {fixture.jwt}"})
            response = conn.getresponse()
            body = response.read()
            status = response.status
            pages += 1
            if status != 200:
                sample = body[:300].decode(errors="replace")
                break
            data = json.loads(body)
            items = data.get("results", data) if isinstance(data, dict) else data
            if sample is None and items:
                sample = items[0]
            buckets += len(items) if isinstance(items, list) else 0
            nxt = data.get("next") if isinstance(data, dict) else None
            path = None
            if nxt:
                n = urlparse(nxt)
                path = f"{n.path}?{n.query}"
        timings.append(time.perf_counter() - t0)
        conn.close()
    return {
        "mode": "history",
        "vendor": connection.vendor,
        "readings": inserted,
        "patients": len(fixture.devices),
        "readings_of_patient": inserted // len(fixture.devices),
        "fill_seconds": round(fill_s, 1),
        "fill_readings_per_s": round(inserted / fill_s, 1),
        "status": status,
        "buckets": buckets,
        "pages": pages,
        "first_bucket": sample,
        "ms_first": round(timings[0] * 1000, 1),
        "ms": percentiles_ms(timings[1:] or timings),
        "all_ms": [round(t * 1000, 1) for t in timings],
    }
