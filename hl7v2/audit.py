"""One audit record per HL7 message answered, written before its ACK is sent (a message whose
record cannot be written gets no ACK, and the sender sends it again)."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from django.db import OperationalError

from audit.models import Action, ActorType, Channel, Outcome
from audit.services import Actor, Origin, audit_record
from hl7v2.services import Answer
from hl7v2.vocabulary import AckCode


def _fields(ack: str) -> tuple[str, str]:
    """The original sender (the ACK's MSH-5) and the message control id (MSA-2)."""
    sender = control_id = ""
    for segment in ack.replace("\n", "\r").split("\r"):
        parts = segment.split("|")
        if parts[0] == "MSH" and len(parts) > 4:
            sender = parts[4].split("^")[0]
        elif parts[0] == "MSA" and len(parts) > 2:
            control_id = parts[2]
    return sender, control_id


def _record(answer: Answer, peer: Any) -> None:
    sender, control_id = _fields(answer.ack)
    address = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else ""
    audit_record(
        actor=Actor(type=ActorType.HL7, label=sender),
        action=Action.RECEIVE,
        outcome=Outcome.SUCCESS if answer.code == AckCode.ACCEPT else Outcome.REFUSED,
        channel=Channel.HL7,
        origin=Origin(address=address),
        resource_type="hl7_message",
        resource_id=control_id or None,
        patients=answer.patients,
        detail={"ack": answer.code, "stored": answer.stored, **(answer.detail or {})},
    )


# A write that meets a lock (SQLite's table locks fail at once rather than wait, while the
# ingest batcher writes readings in its own thread) is tried again before the ACK is held back.
RECORD_ATTEMPTS = 5


async def hl7_message_record(answer: Answer, *, peer: Any) -> None:
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            await sync_to_async(_record)(answer, peer)
            return
        except OperationalError:
            if attempt == RECORD_ATTEMPTS:
                raise
            await asyncio.sleep(0.02 * attempt)
