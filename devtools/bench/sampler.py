"""CPU and memory of the server processes, and of the machine, while the load runs."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import psutil


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
    if "alarms_evaluate" in cmdline:
        return "alarm evaluator"
    if "daphne" in cmdline:
        return "daphne (not benchmarked)"
    if "celery" in cmdline:
        return "celery"
    if name.startswith("python"):
        return "python (other)"
    return name
