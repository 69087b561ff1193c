"""A real MLLP server standing in for a hospital's HL7 alert manager (fixture ``alert_manager``).

It keeps every message it receives and answers each with an ACK whose code the test chooses
(``answers``: the codes for the next messages, then ``default``).
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import hl7
import pytest

START, END = b"\x0b", b"\x1c\x0d"


@dataclass
class AlertManagerStub:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    default: str = "AA"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, message: str) -> str:
        with self.lock:
            self.received.append(message)
            code = self.answers.pop(0) if self.answers else self.default
        return str(hl7.parse(message).create_ack(code, application="ACM"))


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        buffer = b""
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            buffer += chunk
            while END in buffer:
                block, buffer = buffer.split(END, 1)
                message = block[block.find(START) + 1 :].decode()
                ack = self.server.stub.answer(message)
                self.request.sendall(START + ack.encode() + END)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    stub: AlertManagerStub


@pytest.fixture
def alert_manager() -> Iterator[AlertManagerStub]:
    """A running MLLP alert manager on a free port."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.stub = AlertManagerStub(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.stub
    server.shutdown()
    server.server_close()
