"""The device side of the device WebSocket (/ws/devices/, docs/protocol.md), shared by the
simulator and the benchmark: the handshake with the device token, readings out as frames, the
server's acknowledgements and refusals back, and the close codes that end a device for good.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

MAX_FRAME_ITEMS = 500  # below the server's WS_MAX_BATCH_ITEMS default (1000)
MAX_MESSAGE_BYTES = 2**22
FATAL_CLOSE_CODES = {4401: "bad token", 4403: "device inactive"}


def device_connect(url: str, token: str, **options: Any) -> connect:
    """websockets' ``connect`` with the device token in the handshake: await it, or use it in
    ``async with``. ``options`` go to ``connect`` (timeouts, pings, compression, queue)."""
    options.setdefault("max_size", MAX_MESSAGE_BYTES)
    return connect(url, additional_headers={"Authorization": f"Device {token}"}, **options)


def readings_frame(items: Sequence[str]) -> str:
    """One frame for readings already serialized as JSON objects: ``reading`` for one, a
    ``readings`` batch for more (at most MAX_FRAME_ITEMS)."""
    if len(items) == 1:
        return '{"type":"reading",' + items[0][1:]
    return '{"type":"readings","items":[' + ",".join(items) + "]}"


@dataclass(frozen=True, slots=True)
class Reply:
    """A server answer: the seqs it stored (``ack``), or a refusal (the ``error`` frame; a
    refused reading is not stored and must not be resent)."""

    acked: Sequence[int] = ()
    error: dict[str, Any] | None = None

    @property
    def refused(self) -> int | None:
        """The seq of the refused reading; None for an ack or an unparseable frame."""
        return None if self.error is None else self.error.get("seq")

    @property
    def retry(self) -> Sequence[int]:
        """The seqs the server could not store now (``storage_unavailable``): not refused,
        to be sent again after a back-off."""
        if self.error is None or self.error.get("error", {}).get("code") != "storage_unavailable":
            return ()
        return [seq for seq in self.error.get("seqs") or () if isinstance(seq, int)]


async def device_replies(ws: ClientConnection) -> AsyncIterator[Reply]:
    """The server's acks and refusals until the connection closes (``ConnectionClosed``)."""
    async for message in ws:
        frame = json.loads(message)
        kind = frame.get("type")
        if kind == "ack":
            yield Reply(acked=frame.get("seqs", ()))
        elif kind == "error":
            yield Reply(error=frame)


def close_refusal(code: int | None) -> str | None:
    """Why a close ``code`` ends the device for good (a bad token, an inactive device), or None
    when reconnecting may help."""
    if code in FATAL_CLOSE_CODES:
        return f"closed {code}: {FATAL_CLOSE_CODES[code]}"
    return None
