"""A Redis of a test's own that the test stops and starts again (a Redis outage): the
redis-server binary on a free port, restarted empty on the same port, as a Redis without
persistence comes back."""

from __future__ import annotations

import subprocess
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
