"""The frame loop both channels share: Channels' consumer loop made lean for connections that
receive thousands of frames, JSON frames decoded by ``monitoring.protocol``, and the
contract's error frame."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from common.errors import ApplicationError, ErrorDetails
from monitoring import protocol
from monitoring.live.feed import receive_resilient

logger = logging.getLogger(__name__)


class FrameConsumer(AsyncWebsocketConsumer):
    """JSON frames with a size limit and the contract's error frame."""

    max_frame_bytes = 0  # settings.WS_MAX_FRAME_BYTES, read once per connection

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' loop, made lean for a connection that receives thousands of frames: it
        waits on the client and the channel layer together with ``asyncio.wait`` and a new
        task per message. Here the client's messages are awaited directly and the channel
        layer's (rare control events) by a task of their own; a lock keeps the handlers one
        at a time, as before. A channel layer that fails (Redis unreachable) is retried after
        a pause instead of ending the connection."""
        self.scope = scope
        self.base_send = send
        self.max_frame_bytes = settings.WS_MAX_FRAME_BYTES
        self._dispatching = asyncio.Lock()
        layer = get_channel_layer(self.channel_layer_alias)
        layer_task = None
        if layer is not None:
            self.channel_layer = layer
            self.channel_name = await layer.new_channel()
            layer_task = asyncio.create_task(self._layer_receive(layer))
        try:
            while True:
                message = await receive()
                await self._dispatch_one(message)
        except StopConsumer:
            pass
        finally:
            if layer_task is not None:
                layer_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await layer_task

    async def _layer_receive(self, layer: Any) -> None:
        # Outlasts a Redis outage: reported to the live feed and retried with back-off
        # (``live.feed.receive_resilient``), the connection stays open.
        receive = receive_resilient(functools.partial(layer.receive, self.channel_name))
        while True:
            try:
                message = await receive()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("channel layer receive failed, retrying: %r", exc)
                await asyncio.sleep(settings.LIVE_PROBE_SECONDS)
                continue
            await self._dispatch_one(message)

    async def _dispatch_one(self, message: dict[str, Any]) -> None:
        async with self._dispatching:
            await self.dispatch(message)
            await self.handled()

    async def handled(self) -> None:
        """Runs after each handler, still in turn (the dashboard's queued live events)."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' default dispatch runs close_old_connections() in a worker thread before
        # every message: a thread hop per frame and per group event, serialised on one
        # thread. These consumers never use the ORM on the event loop; their database work
        # runs in database_sync_to_async (which closes stale connections itself) or in the
        # ingest batcher's threads.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw: str | bytes = text_data if text_data is not None else (bytes_data or b"")
        frame = protocol.frame_decode(raw, max_bytes=self.max_frame_bytes)
        if isinstance(frame, protocol.Refusal):
            await self.send_json(frame.frame())
            return
        await self.receive_frame(frame)

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def send_error(
        self,
        code: str,
        message: str,
        details: ErrorDetails | None = None,
        **extra: Any,
    ) -> None:
        await self.send_json(protocol.error_frame(code, message, details, **extra))

    async def send_application_error(self, exc: ApplicationError, **extra: Any) -> None:
        await self.send_error(exc.code, exc.message, exc.details, **extra)
