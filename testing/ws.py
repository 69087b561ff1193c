"""Helpers for WebSocket consumer tests (WebsocketCommunicator against the real ASGI app)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from config.asgi import application
from monitoring.ingest import batcher
from monitoring.live import hub

if TYPE_CHECKING:
    from accounts.models import User


def reading(seq: int, bpm: int = 80, metric: str = "heart_rate", **extra: Any) -> dict:
    return {
        "seq": seq,
        "metric": metric,
        "bpm": bpm,
        "recorded_at": timezone.now().isoformat(),
        **extra,
    }


def episode(bpm: int, seconds: int, first_seq: int = 1) -> list[dict]:
    """``seconds + 1`` readings at ``bpm``, one a second, ending now (an episode of that
    length, for the alarm rules, which measure hold times on ``recorded_at``)."""
    start = timezone.now() - timedelta(seconds=seconds)
    return [
        reading(first_seq + i, bpm, recorded_at=(start + timedelta(seconds=i)).isoformat())
        for i in range(seconds + 1)
    ]


async def device_connect(token: str | None) -> WebsocketCommunicator:
    headers = [(b"authorization", f"Device {token}".encode())] if token is not None else []
    communicator = WebsocketCommunicator(application, "/ws/devices/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def dashboard_connect(
    user: User | None = None, token: str | None = None
) -> WebsocketCommunicator:
    """A dashboard; authenticated (auth.ok consumed) when a user or token is given."""
    communicator = WebsocketCommunicator(application, "/ws/dashboard/")
    connected, _ = await communicator.connect()
    assert connected
    if user is not None or token is not None:
        if not token:
            assert user is not None  # the condition above: no token, so a user
            token = str(AccessToken.for_user(user))
        await communicator.send_json_to({"type": "auth", "token": token})
        reply = await communicator.receive_json_from(timeout=5)
        assert reply["type"] == "auth.ok", reply
    return communicator


async def subscribe(communicator: WebsocketCommunicator, **scope: int) -> dict:
    await communicator.send_json_to({"type": "subscribe", **scope})
    reply: dict[str, Any] = await communicator.receive_json_from(timeout=5)
    return reply


async def receive_type(communicator: WebsocketCommunicator, kind: str, wait: float = 5) -> dict:
    """The next frame of this type (frames of other types are skipped)."""
    while True:
        frame: dict[str, Any] = await communicator.receive_json_from(timeout=wait)
        if frame["type"] == kind:
            return frame


async def expect_close(communicator: WebsocketCommunicator, wait: float = 5) -> int | None:
    while True:
        output = await communicator.receive_output(timeout=wait)
        if output["type"] == "websocket.close":
            return output.get("code")


@pytest.fixture(autouse=True)
async def ingest_batchers_closed() -> AsyncIterator[None]:
    """Each test's event loop gets its own ingest batcher; release the DB connections that the
    batcher's threads and the consumers' sync thread opened, so the test DB can be dropped.
    Autouse where a conftest imports it (the apps whose tests open device connections). The
    loop's live hub (its Redis connections and tasks) goes with it."""
    yield
    await batcher.batcher_shutdown()
    live_hub = hub.hubs.pop(asyncio.get_running_loop())
    if live_hub is not None:
        await live_hub.aclose()
    await sync_to_async(connections.close_all)()
