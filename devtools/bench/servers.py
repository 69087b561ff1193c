"""The servers under load: Daphne processes the benchmark starts, or running ones it is
given, and the database they must share with it."""

from __future__ import annotations

import http.client
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from config.net import free_port

ROOT = Path(__file__).resolve().parents[2]


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
