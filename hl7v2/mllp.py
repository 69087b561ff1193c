"""MLLP (the Minimal Lower Layer Protocol): ``0x0B`` message ``0x1C 0x0D`` over TCP.

The frame reader is our own because the server must survive what real networks deliver and
python-hl7's stream reader does not: bytes between frames (a probe, a half-sent frame after a
reconnect) are skipped while the message after them is still read, and a frame over the size
limit is skipped to its end and reported, so the connection goes on with the next message.
The clients (``mllp_exchange`` for asyncio, ``mllp_send_sync`` for Celery workers and
commands) send frames and read the answers with the same reader.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

logger = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
ENCODING = "utf-8"


def frame(message: str) -> bytes:
    """One message framed for MLLP (segments end with CR)."""
    return START_BLOCK + message.encode(ENCODING) + END_BLOCK


@dataclass(frozen=True, slots=True)
class Frame:
    """What the reader found: a message, or a frame over the size limit (``too_large``, with
    the first bytes kept in ``data`` to find its MSH-10)."""

    data: bytes
    too_large: bool = False
    skipped: int = 0  # bytes of garbage skipped before it

    def text(self) -> str:
        return self.data.decode(ENCODING, errors="replace")


async def frame_read(reader: asyncio.StreamReader, *, limit: int) -> Frame | None:
    """The next frame, or None at the end of the stream (a partial frame there is dropped).

    ``limit`` is the largest frame taken; the stream reader's own limit (``start_server``'s
    ``limit``) must be at least that, since it bounds how much is buffered while looking for
    the end of a frame.
    """
    head = b""
    overrun = False
    skipped = 0
    while True:
        try:
            block = await reader.readuntil(END_BLOCK)
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            # No end within the buffer: drop what was read so far (keeping the head) and
            # go on to the end of this frame.
            chunk = await reader.readexactly(exc.consumed)
            if not overrun:
                head = chunk[:4096]
            overrun = True
            continue
        if overrun:
            return Frame(data=_after_start(head)[:4096], too_large=True)
        start = block.rfind(START_BLOCK)
        if start < 0:
            skipped += len(block)
            continue  # no frame in it at all: garbage up to a stray end block
        skipped += start
        data = block[start + 1 : -len(END_BLOCK)]
        if len(data) > limit:
            return Frame(data=data[:4096], too_large=True, skipped=skipped)
        return Frame(data=data, skipped=skipped)


def _after_start(head: bytes) -> bytes:
    start = head.find(START_BLOCK)
    return head[start + 1 :] if start >= 0 else head


async def mllp_exchange(
    host: str, port: int, messages: list[str], *, wait: float = 10.0
) -> list[str]:
    """Send ``messages`` on one connection, all at once (pipelined), and return the answers in
    the order they arrive."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait)
    try:
        writer.write(b"".join(frame(m) for m in messages))
        await writer.drain()
        answers = []
        for _ in messages:
            answer = await asyncio.wait_for(frame_read(reader, limit=2**24), wait)
            if answer is None:
                raise ConnectionError("the server closed the connection before answering")
            answers.append(answer.text())
        return answers
    finally:
        writer.close()
        await writer.wait_closed()


def mllp_send_sync(host: str, port: int, message: str, *, timeout: float) -> str:
    """Send one message and wait for its answer (blocking; for workers and commands)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(frame(message))
        buffer = b""
        while END_BLOCK not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the receiver closed the connection without an answer")
            buffer += chunk
    block = buffer[: buffer.index(END_BLOCK)]
    start = block.rfind(START_BLOCK)
    return block[start + 1 :].decode(ENCODING, errors="replace")
