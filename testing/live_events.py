"""Listening to the live dashboard events (``monitoring.live.hub``) from a synchronous test,
as another server process would: a Redis pub/sub subscription to the groups' channels."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from django.conf import settings

from monitoring.live.hub import _unpack, live_channel


class LiveEvents:
    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub

    def next(self, wait: float = 5.0) -> tuple[str, dict[str, Any]]:
        """The next (group, event) published, or TimeoutError after ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            message = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None and message["type"] == "message":
                _, event = _unpack(message["data"])
                group = message["channel"].decode().removeprefix(live_channel(""))
                return group, event
        raise TimeoutError


@contextmanager
def live_events(*groups: str) -> Iterator[LiveEvents]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(*(live_channel(group) for group in groups))
    for _ in groups:  # the confirmations: from here on every publish reaches this listener
        while (message := pubsub.get_message(timeout=5)) is None or message["type"] != "subscribe":
            pass
    try:
        yield LiveEvents(pubsub)
    finally:
        pubsub.close()
        client.close()
