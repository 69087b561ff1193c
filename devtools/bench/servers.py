"""The servers under load: Daphne processes the benchmark starts, or running ones it is
given."""

from __future__ import annotations

import http.client
import resource
import subprocess
import time
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

from config.net import free_port
from testing.processes import Daphne, Evaluator


def fd_limit_raise() -> None:
    """Thousands of connections: lift this process's open-file limit to the hard limit (the
    servers it starts inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ServerSet:
    """Daphne processes started by the benchmark on free ports, sharing Redis and the DB, and
    the alarm evaluator they feed, each logging to ``log_dir``; run by the live tests' runner
    (testing.processes)."""

    def __init__(self) -> None:
        self.servers: list[Daphne] = []
        self.evaluators: list[Evaluator] = []
        self.redis: subprocess.Popen | None = None

    @property
    def urls(self) -> list[str]:
        return [server.url("", "http") for server in self.servers]

    @property
    def pids(self) -> list[int]:
        return [server.process.pid for server in self.servers]

    def start(
        self,
        count: int,
        *,
        env: dict[str, str],
        log_dir: Path,
        app: str = "config.asgi:application",
        evaluators: int = 1,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        fd_limit_raise()
        for _ in range(count):
            port = free_port()
            log = log_dir / f"daphne-{port}.log"
            # The command's stdout carries the result: the logs stay in their files.
            self.servers.append(Daphne(env, log, port=port, app=app, echo_log=False))
        # The alarm rules run in their own process, as in production (Procfile ``alarms``).
        evaluator_env = {**env, "LOG_LEVEL": "INFO"}
        for number in range(evaluators):
            log = log_dir / f"evaluator-{number}.log"
            self.evaluators.append(Evaluator(evaluator_env, log, echo_log=False))
        for server in self.servers:
            url = server.url("", "http")
            server.wait_until(partial(answers_http, url), 60, "answering HTTP")
        for evaluator in self.evaluators:
            evaluator.wait_ready()

    def stop(self) -> None:
        for server in [*self.servers, *self.evaluators]:
            server.stop(timeout=10)
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(timeout=10)


def answers_http(url: str) -> bool:
    """Whether the server answers HTTP (any status); the request loads the URLconf too."""
    parsed = urlparse(url)
    assert parsed.hostname is not None, url
    try:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
        conn.request("GET", "/api/schema/?format=json")
        conn.getresponse().read()
        conn.close()
        return True
    except OSError:
        return False


def wait_http(url: str, *, timeout: float = 60) -> None:
    """Wait until a running server (one the benchmark did not start) answers HTTP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers_http(url):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server {url} did not answer within {timeout:.0f} s")


def ws_url(base: str, path: str) -> str:
    parsed = urlparse(base)
    scheme = "wss" if parsed.scheme in {"https", "wss"} else "ws"
    return f"{scheme}://{parsed.netloc}{path}"
