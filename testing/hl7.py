"""A real MLLP server standing in for a hospital's HL7 alert manager (fixture ``alert_manager``),
and the ADT messages a hospital's patient administration system sends (``adt_message``).

It keeps every message it receives and answers each with an ACK whose code the test chooses
(``answers``: the codes for the next messages, then ``default``).
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import hl7
import pytest
from django.utils import timezone

START, END = b"\x0b", b"\x1c\x0d"


def adt_message(
    event: str,
    control_id: str,
    *,
    mrn: str,
    ward: str = "",
    bed: str = "",
    name: str = "LOVELACE^ADA",
    born: str = "19900101",
    sex: str = "F",
    prior: str = "",
) -> str:
    """An ``ADT^<event>`` from the patient administration system "PAS" (HL7 2.5), the patient
    by PID-3 (a PI and an MR repetition), the location in PV1-3 (point of care^^bed)."""
    from hl7v2.pcd01 import hl7_dtm  # here: the listener's modules need the app registry

    now = hl7_dtm(timezone.now() - timedelta(seconds=1))
    structure = {"A40": "ADT_A39", "A08": "ADT_A01", "A04": "ADT_A01"}.get(event, f"ADT_{event}")
    segments = [
        f"MSH|^~\\&|PAS|HOSPITAL|PATIENT_MONITOR|ICU|{now}||ADT^{event}^{structure}|{control_id}"
        "|P|2.5",
        f"EVN|{event}|{now}",
        f"PID|||99887766^^^HOSPITAL^PI~{mrn}^^^HOSPITAL^MR||{name}||{born}|{sex}",
    ]
    if prior:
        segments.append(f"MRG|{prior}^^^HOSPITAL^MR")
    segments.append(f"PV1||I|{ward}^^{bed}")
    return "\r".join(segments) + "\r"


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
