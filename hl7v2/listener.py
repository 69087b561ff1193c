"""The MLLP listener: many connections on one asyncio loop, each answered in order.

Per connection a reader takes frames off the socket and starts each message's work at once
(so pipelined messages are stored in the same batcher flush), and a writer sends the ACKs in
the order the messages came. ADT messages of a connection are applied one after the other, in
the order they came (a transfer after its admission). At most ``HL7_MLLP_PIPELINE_DEPTH`` messages of one connection
are in flight; the reader waits beyond that (TCP backpressure). A connection quiet for
``HL7_MLLP_IDLE_TIMEOUT`` seconds is closed. A refusal (AE/AR) never closes the connection;
storage being unavailable does, with no ACK for what was not stored, so the sender resends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable

from django.conf import settings
from django.db import close_old_connections

from hl7v2.ack import Answer, ack_build
from hl7v2.audit import hl7_message_record
from hl7v2.mllp import Frame, frame, frame_read
from hl7v2.senders import Peer, SenderCache
from hl7v2.services import DeviceCache, StorageUnavailable, message_ingest
from hl7v2.vocabulary import AckCode, ErrorCode, Refusal
from monitoring.ingest.batcher import IngestBatcher, batcher_get, batcher_shutdown

logger = logging.getLogger(__name__)


class MllpListener:
    """``await MllpListener().start(host, port)``; ``await listener.stop()``."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._peers: dict[asyncio.Task, Peer] = {}
        self.batcher: IngestBatcher | None = None
        self.address: tuple[str, int] = ("", 0)
        self.devices = DeviceCache()
        self.senders = SenderCache()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the address bound (port 0 picks a free one)."""
        self.batcher = batcher_get()
        limit = settings.HL7_MLLP_MAX_FRAME_BYTES + 64
        self.server = await asyncio.start_server(
            self._serve, host, port, limit=limit, ssl=tls_context()
        )
        address = self.server.sockets[0].getsockname()
        self.address = (address[0], address[1])
        return self.address

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        self._peers[task] = Peer(address=str(peer[0]) if peer else "", tls_subject=_subject(writer))
        answers: asyncio.Queue[Awaitable[Answer] | None] = asyncio.Queue(
            settings.HL7_MLLP_PIPELINE_DEPTH
        )
        sender = asyncio.create_task(self._send_answers(answers, writer))
        try:
            await self._read_messages(reader, answers, sender, self._peers.get(task))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                answers.put_nowait(None)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(sender, 10)
            sender.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._connections.discard(task)
            self._peers.pop(task, None)
            logger.debug("MLLP connection from %s closed", peer)

    async def _read_messages(
        self,
        reader: asyncio.StreamReader,
        answers: asyncio.Queue[Awaitable[Answer] | None],
        sender: asyncio.Task,
        peer: Peer | None,
    ) -> None:
        limit = settings.HL7_MLLP_MAX_FRAME_BYTES
        last_adt: asyncio.Future[Answer] | None = None
        while not sender.done():
            try:
                found = await asyncio.wait_for(
                    frame_read(reader, limit=limit), settings.HL7_MLLP_IDLE_TIMEOUT
                )
            except TimeoutError:
                logger.info("MLLP connection idle for %ss: closed", settings.HL7_MLLP_IDLE_TIMEOUT)
                return
            if found is None:
                return
            if found.skipped:
                logger.warning("MLLP: %d bytes outside any frame skipped", found.skipped)
            if _is_adt(found):
                # ADT events apply in the order they were sent (an A02 after its A01): each
                # waits for the connection's previous ADT message; readings stay concurrent.
                last_adt = asyncio.ensure_future(self._answer_after(last_adt, found, peer))
                await answers.put(last_adt)
            else:
                await answers.put(asyncio.ensure_future(self._answer(found, peer)))

    async def _answer_after(
        self, previous: asyncio.Future[Answer] | None, found: Frame, peer: Peer | None
    ) -> Answer:
        if previous is not None:
            await asyncio.wait([previous])  # its outcome is its own answer's business
        return await self._answer(found, peer)

    async def _answer(self, found: Frame, peer: Peer | None) -> Answer:
        if found.too_large:
            refusal = Refusal(
                f"The message is larger than {settings.HL7_MLLP_MAX_FRAME_BYTES} bytes.",
                code="frame_too_large",
                ack_code=AckCode.REJECT,
                hl7_error=ErrorCode.SEGMENT_SEQUENCE,
            )
            ack = ack_build(text=found.text(), refusal=refusal)
            return Answer(ack=ack, code=AckCode.REJECT, stored=0)
        assert self.batcher is not None
        return await message_ingest(
            text=found.text(),
            batcher=self.batcher,
            devices=self.devices,
            senders=self.senders,
            peer=peer,
        )

    async def _send_answers(
        self, answers: asyncio.Queue[Awaitable[Answer] | None], writer: asyncio.StreamWriter
    ) -> None:
        while (pending := await answers.get()) is not None:
            try:
                answer = await pending
            except StorageUnavailable as exc:
                logger.error("HL7 readings not stored (%s): closing without an ACK", exc)
                writer.close()  # the reader sees the end too
                return
            except Exception:
                logger.exception("HL7 message failed: closing without an ACK")
                writer.close()
                return
            try:
                await hl7_message_record(answer, peer=writer.get_extra_info("peername"))
            except Exception:
                # No ACK without its audit record: close, so that the sender sends the message
                # again (the reader sees the end too; a stored message is stored once).
                logger.exception("HL7 audit record not written: closing without an ACK")
                writer.close()
                return
            writer.write(frame(answer.ack))
            await writer.drain()


def tls_context() -> ssl.SSLContext | None:
    """The listener's TLS context (``HL7_MLLP_TLS_CERT``/``_KEY``), requiring a client
    certificate issued by ``HL7_MLLP_TLS_CLIENT_CA`` when that is set; None: plain TCP."""
    if not settings.HL7_MLLP_TLS_CERT:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.HL7_MLLP_TLS_CERT, settings.HL7_MLLP_TLS_KEY or None)
    if settings.HL7_MLLP_TLS_CLIENT_CA:
        context.load_verify_locations(cafile=settings.HL7_MLLP_TLS_CLIENT_CA)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _subject(writer: asyncio.StreamWriter) -> str | None:
    """The common name of the connection's verified client certificate, if any."""
    cert = writer.get_extra_info("peercert")
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _is_adt(found: Frame) -> bool:
    """Whether a frame's MSH-9 names an ADT message (read off the raw first segment, before
    the message is parsed)."""
    if found.too_large:
        return False
    first = found.data[:512].split(b"\r", 1)[0].split(b"\n", 1)[0]
    if not first.startswith(b"MSH") or len(first) < 8:
        return False
    fields = first.split(first[3:4])
    components = fields[1][:1] if len(fields) > 1 else b"^"
    return len(fields) > 8 and fields[8].split(components or b"^")[0].strip() == b"ADT"


async def listen_forever(host: str, port: int) -> None:
    """``manage.py hl7_listen``: serve until cancelled (Ctrl-C, SIGTERM)."""
    close_old_connections()
    listener = MllpListener()
    bound = await listener.start(host, port)
    logger.info("HL7 MLLP listener on %s:%s", *bound)
    try:
        await asyncio.Event().wait()
    finally:
        await listener.stop()
        await batcher_shutdown()
