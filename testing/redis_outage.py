"""Redis outages for tests: a Redis of a test's own that the test stops and starts again (the
redis-server binary on a free port, restarted empty on the same port, as a Redis without
persistence comes back), and a "silent" Redis that accepts connections and never answers (a
hung server or a black-holed host)."""

from __future__ import annotations

import signal
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import embedded_redis
from config.net import free_port


class StoppableRedis:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> StoppableRedis:
        assert self.process is None, "already running"
        self.process, url = embedded_redis.start(self.port, self.workdir)
        assert url == self.url
        return self

    def pause(self) -> None:
        """Hung (SIGSTOP): connections are still accepted by the kernel, nothing is answered,
        as a server in a long save or a black-holed host."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Answering again (SIGCONT), with everything it held: commands sent meanwhile run."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Gone at once, as in a crash: connections are reset, new ones refused."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def stoppable_redis(tmp_path: Path) -> Iterator[StoppableRedis]:
    server = StoppableRedis(tmp_path / "redis").start()
    yield server
    server.stop()


class _Silent(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while self.request.recv(65536):  # read everything, answer nothing, until closed
            pass


class _SilentServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """The URL of a server that accepts connections and never answers."""
    server = _SilentServer(("127.0.0.1", 0), _Silent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    server.shutdown()
    server.server_close()


def settings_point_at(settings: Any, url: str) -> None:
    """Point this process's Redis users (cache, channel layer, readings stream) at ``url``
    (``settings``: pytest-django's fixture, which restores them after the test)."""
    from channels.layers import channel_layers

    settings.REDIS_URL = url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}
    }
    channel_layers.backends.clear()
