"""Who may send: enrolled senders per place (``Hl7Sender``), matched on the connection's
address, MSH-3, MSH-4 and, over TLS, the client certificate's subject.

Enrolment is written through ``sender_create`` / ``sender_delete`` (REST: /api/places/<id>/
hl7-senders/). The listener matches each message with ``senders_matching`` against a list it
re-reads at most every ``HL7_DEVICE_CACHE_SECONDS`` (``SenderCache``). Whether enrolment is
enforced is ``HL7_SENDERS_REQUIRED`` (default: on whenever ``DEBUG`` is off).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict, Unpack

from channels.db import database_sync_to_async
from django.conf import settings

from clinical.models import Place
from common.errors import ValidationFailed
from hl7v2.models import Hl7Sender


@dataclass(frozen=True, slots=True)
class Peer:
    """The other end of an MLLP connection: its address and, over TLS, the subject common
    name of its verified client certificate."""

    address: str
    tls_subject: str | None = None


@dataclass(frozen=True, slots=True)
class SenderEntry:
    id: int
    place_id: int
    name: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    sending_application: str  # "": any
    sending_facility: str
    tls_subject: str


def address_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IP or CIDR as a network (a single address is a /32 or /128); ValueError if neither."""
    return ipaddress.ip_network(text.strip(), strict=False)


class SenderMatch(TypedDict, total=False):
    """What a sender's messages and connection must carry besides its address; None (null on
    the wire) and "" match anything."""

    sending_application: str | None
    sending_facility: str | None
    tls_subject: str | None


def sender_create(
    *, place: Place, name: str, address: str, **match: Unpack[SenderMatch]
) -> Hl7Sender:
    try:
        network = address_network(address)
    except ValueError:
        raise ValidationFailed(
            "The request is not valid.",
            details={"address": ["Give an IP address or a CIDR network (10.1.2.0/24)."]},
        ) from None
    return Hl7Sender.objects.create(
        place=place,
        name=name,
        address=str(network) if network.num_addresses > 1 else str(network.network_address),
        **{field: value or "" for field, value in match.items()},
    )


def sender_delete(*, sender: Hl7Sender) -> None:
    sender.delete()


def senders_of_place(*, place_id: int) -> list[Hl7Sender]:
    return list(Hl7Sender.objects.filter(place_id=place_id).order_by("id"))


def sender_entries() -> list[SenderEntry]:
    return [
        SenderEntry(
            id=s.id,
            place_id=s.place_id,
            name=s.name,
            network=address_network(s.address),
            sending_application=s.sending_application,
            sending_facility=s.sending_facility,
            tls_subject=s.tls_subject,
        )
        for s in Hl7Sender.objects.all()
    ]


def senders_matching(
    entries: Iterable[SenderEntry], *, peer: Peer, application: str, facility: str
) -> list[SenderEntry]:
    """The enrolled senders this message may come from (null fields match anything)."""
    try:
        address = ipaddress.ip_address(peer.address.split("%", 1)[0])
    except ValueError:
        return []
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return [
        e
        for e in entries
        if address.version == e.network.version
        and address in e.network
        and e.sending_application in ("", application)
        and e.sending_facility in ("", facility)
        and e.tls_subject in ("", peer.tls_subject)
    ]


def senders_required() -> bool:
    return bool(settings.HL7_SENDERS_REQUIRED)


class SenderCache:
    """The enrolled senders for one listener, re-read at most every ``ttl`` seconds (a new
    enrolment or a removal takes effect within it)."""

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = settings.HL7_DEVICE_CACHE_SECONDS if ttl is None else ttl
        self.clock = time.monotonic
        self._read_at = -float("inf")
        self._entries: list[SenderEntry] = []
        self._reading: asyncio.Task[list[SenderEntry]] | None = None

    async def entries(self) -> list[SenderEntry]:
        """The senders; messages that arrive together while the list is stale share one
        read of it."""
        if self.clock() - self._read_at <= self.ttl:
            return self._entries
        if self._reading is None:
            self._reading = asyncio.ensure_future(database_sync_to_async(sender_entries)())
        reading = self._reading
        try:
            entries = await asyncio.shield(reading)
        finally:
            if self._reading is reading and reading.done():
                self._reading = None
        self._entries, self._read_at = entries, self.clock()
        return entries
