"""Inbound HL7: one ORU^R01 through the ingest pipeline that the device WebSocket uses, and its
ACK.

A message is taken row by row: every observation is matched to its device and patient and
validated (``monitoring.readings.reading_parse``, the same bounds as the WebSocket and REST
paths); the rows that pass are handed to the process's ingest batcher (the others are reported
in the ACK, AA with warnings, or AE when no row passed), which stores them with
(device, seq) idempotency, appends them to the readings stream for alarm evaluation in the
same transaction, commits, and broadcasts them to the dashboards. Only then is the ACK built.

Idempotency: an HL7 message has no seq, so each reading's seq is derived from the message's
MSH-10 and the OBX's position in it (``observation_seq``). A message resent with the same
MSH-10 by the same device yields the same (device, seq) keys: ``ON CONFLICT DO NOTHING``
stores nothing new and the answer is AA again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass

import hl7
from channels.db import database_sync_to_async
from django.conf import settings

from clinical.models import Device
from clinical.selectors import devices_by_serial
from common.errors import ApplicationError
from hl7v2.ack import Answer, ack_build
from hl7v2.adt import adt_ingest
from hl7v2.models import ObservationStatus
from hl7v2.pcd01 import Observation, Pcd01Message, message_parse, msh_value, pcd01_read
from hl7v2.senders import (
    Peer,
    SenderCache,
    senders_matching,
    senders_required,
)
from hl7v2.vocabulary import AckCode, ErrorCode, Location, Refusal
from monitoring.ingest.batcher import IngestBatcher
from monitoring.readings import ReadingIn, RecordedAtWindow, reading_parse
from monitoring.selectors import device_target

logger = logging.getLogger(__name__)

# Derived seqs live in [2**62, 2**63): far above any counter a WebSocket device reaches, so a
# device that also streams over the WebSocket keeps its own seqs apart.
HL7_SEQ_BASE = 2**62


def observation_seq(*, control_id: str, index: int) -> int:
    """The seq of the ``index``-th OBX of the message with MSH-10 ``control_id``."""
    digest = hashlib.sha256(f"{control_id}\x00{index}".encode()).digest()
    return HL7_SEQ_BASE + int.from_bytes(digest[:8], "big") % HL7_SEQ_BASE


class DeviceCache:
    """Devices by serial for one listener: each looked up at most once per ``ttl`` seconds,
    and the lookups of messages that arrive together made in one query.

    Without it every message cost a query on the one thread that serves database calls, which
    bounded a listener to some 30 messages a second under load. A device deactivated or
    reassigned is refused or rerouted within ``ttl`` (default 2 s; a WebSocket device is
    re-checked on a change event and every 60 s).
    """

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = settings.HL7_DEVICE_CACHE_SECONDS if ttl is None else ttl
        self._entries: dict[str, tuple[float, Device | None]] = {}
        self._pending: set[str] = set()
        self._batch: asyncio.Future[None] | None = None
        self.clock = time.monotonic
        self.queries = 0
        self._lookups: set[asyncio.Future[None]] = set()

    async def get_many(self, serials: set[str]) -> dict[str, Device]:
        now = self.clock()
        stale = {s for s in serials if now - self._entries.get(s, (-math.inf, None))[0] > self.ttl}
        if stale:
            if self._batch is None:
                self._batch = asyncio.get_running_loop().create_future()
                task = asyncio.ensure_future(self._lookup(self._batch))
                self._lookups.add(task)
                task.add_done_callback(self._lookups.discard)
            self._pending |= stale
            await asyncio.shield(self._batch)
        return {s: d for s in serials if (d := self._entries[s][1]) is not None}

    async def _lookup(self, batch: asyncio.Future[None]) -> None:
        # Everyone who joined before this runs is in this query; later callers start the next.
        serials, self._pending, self._batch = self._pending, set(), None
        try:
            found = await database_sync_to_async(devices_by_serial)(serials=serials)
        except Exception as exc:
            batch.set_exception(exc)
            return
        self.queries += 1
        now = self.clock()
        for serial in serials:
            self._entries[serial] = (now, found.get(serial))
        if len(self._entries) > 100_000:  # bounded: unknown serials must not grow it
            self._entries = {k: v for k, v in self._entries.items() if now - v[0] <= self.ttl}
        batch.set_result(None)


class StorageUnavailable(Exception):
    """The readings could not be stored (database or readings stream down): nothing was
    stored and no ACK is sent, so the sender sends the message again."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from, and the places it may write to (None: any place, when
    enrolment is not enforced and no enrolled sender matched)."""

    peer: Peer | None
    application: str
    facility: str
    control_id: str
    places: frozenset[int] | None


async def message_source(
    message: hl7.Message, *, peer: Peer | None, senders: SenderCache | None
) -> Source:
    """The message's sender, refusing (AR, audited) one that is not enrolled when enrolment is
    enforced (``HL7_SENDERS_REQUIRED``)."""
    application, facility = msh_value(message, 3), msh_value(message, 4)
    control_id = msh_value(message, 10)
    matched = []
    if peer is not None:
        entries = await (senders or SenderCache(ttl=0)).entries()
        matched = senders_matching(entries, peer=peer, application=application, facility=facility)
    if not matched and senders_required():
        raise Refusal.rejected(
            f"No sender is enrolled for {peer.address if peer else 'this connection'} with "
            f"MSH-3 {application!r} and MSH-4 {facility!r}.",
            code="unknown_sender",
            field=3,
        ).for_audit()
    places = frozenset(e.place_id for e in matched) if matched else None
    return Source(peer, application, facility, control_id, places)


async def message_ingest(
    *,
    text: str,
    batcher: IngestBatcher,
    devices: DeviceCache | None = None,
    senders: SenderCache | None = None,
    peer: Peer | None = None,
) -> Answer:
    """Take one message; the ACK to send. Raises ``StorageUnavailable`` (send no ACK).

    Every other failure is answered: a message that cannot be read or understood with AR/AE
    and an ERR; one that breaks this code unexpectedly with AE ``application_error``.
    """
    source: Source | None = None
    try:
        message = message_parse(text)
        source = await message_source(message, peer=peer, senders=senders)
        if msh_value(message, 9) == "ADT":
            return await adt_ingest(
                message=message,
                text=text,
                places=source.places,
                application=source.application,
                address=peer.address if peer else "",
                control_id=source.control_id,
            )
        parsed = pcd01_read(message)
        readings, wards, refused_rows = await _readings(
            parsed, devices or DeviceCache(ttl=0), places=source.places
        )
    except Refusal as refusal:
        # The listener writes the message's one audit record (hl7v2.audit) from this answer:
        # a refusal for who sent it carries its reason and the patients it named.
        logger.info("HL7 message refused (%s): %s", refusal.code, refusal.message)
        return Answer(
            ack=ack_build(text=text, refusal=refusal),
            code=refusal.ack_code,
            stored=0,
            patients=refusal.patient_ids,
            detail={
                "code": refusal.code,
                "reason": refusal.message,
                "tls_subject": peer.tls_subject if peer else None,
            },
        )
    except Exception:
        logger.exception("HL7 message could not be processed")
        failure = Refusal(
            "The message could not be processed; nothing of it was stored.",
            code="application_error",
        )
        return Answer(ack=ack_build(text=text, refusal=failure), code=AckCode.ERROR, stored=0)
    await _statuses_keep(parsed, readings)
    if refused_rows and not readings:
        # Nothing to store: the message is refused (AE), each row's reason in its own ERR.
        first, *others = refused_rows
        logger.info("HL7 message refused (%s): %s", first.code, first.message)
        ack = ack_build(text=text, refusal=first, warnings=others)
        return Answer(ack=ack, code=AckCode.ERROR, stored=0)
    stored = 0
    if readings:
        before = batcher.stored_count
        try:
            refused = await batcher.submit(readings, wards, path="hl7")
        except Exception as exc:
            raise StorageUnavailable(str(exc)) from exc
        stored = batcher.stored_count - before
        if refused:
            # Valid by every rule, yet the database refused these rows (validation keeps such
            # readings out; this is for whatever it may miss): the others are stored, and the
            # sender hears AE, not AA, so that no one takes the message as recorded in full.
            partly = Refusal(
                f"{len(refused)} of {len(readings)} readings could not be stored; the others were.",
                code="not_storable",
            )
            ack = ack_build(text=text, refusal=partly, warnings=refused_rows)
            return Answer(ack=ack, code=partly.ack_code, stored=stored, patients=tuple(wards))
    # Accepted: the rows not taken (a bad value, unit, time or device) are reported as
    # warnings, one ERR each with its location; the sender need not resend the message.
    ack = ack_build(text=text, code=AckCode.ACCEPT, warnings=refused_rows, note=_note(parsed))
    return Answer(ack=ack, code=AckCode.ACCEPT, stored=stored, patients=tuple(wards))


def _note(parsed: Pcd01Message) -> str:
    notes = []
    if parsed.skipped_codes:
        codes = ", ".join(sorted(set(parsed.skipped_codes)))
        notes.append(
            f"{len(parsed.skipped_codes)} observation(s) of unknown codes skipped: {codes}"
        )
    if parsed.not_readings:
        notes.append(
            f"{parsed.not_readings} observation(s) without a value (status X/D/W, empty or "
            "placeholder) skipped"
        )
    if parsed.demo:
        notes.append(f"{parsed.demo} observation(s) of a monitor in demonstration mode skipped")
    return "; ".join(notes)


async def _statuses_keep(parsed: Pcd01Message, readings: list[ReadingIn]) -> None:
    """Record the result status of the readings that are not final (OBX-11 P, R, S, C), by
    their (device, seq), before they are stored: a reading is never served as final while
    its status is still being written. Most messages have none: no query."""
    status_of = {
        observation_seq(control_id=parsed.control_id, index=o.index): o.status
        for o in parsed.observations
        if o.status != "final"
    }
    rows = [
        ObservationStatus(device_id=r.device_id, seq=r.seq, status=status_of[r.seq])
        for r in readings
        if r.seq in status_of and r.device_id is not None
    ]
    if rows:
        await database_sync_to_async(ObservationStatus.objects.bulk_create)(
            rows, ignore_conflicts=True
        )


async def _readings(
    parsed: Pcd01Message, cache: DeviceCache, *, places: frozenset[int] | None = None
) -> tuple[list[ReadingIn], dict[int, int | None], list[Refusal]]:
    """Match and validate every observation (no query but the cached device lookup): the
    readings to store, their patients' wards, and the rows refused (with why and where).

    ``places``: the places the sender may write to; a device of any other place refuses the
    whole message (AR, audited): a sender naming another place's device is not trusted with
    any row of it."""
    refused_rows = list(parsed.row_refusals)
    if not parsed.observations:
        return [], {}, refused_rows
    devices = await cache.get_many({o.device_serial for o in parsed.observations})
    window = RecordedAtWindow.at()
    readings: list[ReadingIn] = []
    wards: dict[int, int | None] = {}
    if places is not None:
        foreign = [d for d in devices.values() if d.place_id not in places]
        if foreign:
            raise Refusal(
                f"The device {foreign[0].serial!r} does not belong to the place this sender "
                "is enrolled for.",
                code="sender_not_allowed",
                ack_code=AckCode.REJECT,
                hl7_error=ErrorCode.APPLICATION_ERROR,
                location=Location("OBX", parsed.observations[0].index, 18),
            ).for_audit(*(d.patient_id for d in foreign if d.patient_id is not None))
    for observation in parsed.observations:
        device = devices.get(observation.device_serial)
        try:
            reading = _reading(parsed, observation, device=device, window=window)
        except Refusal as refusal:
            refused_rows.append(refusal)
            continue
        readings.append(reading)
        wards[reading.patient_id] = device.patient.ward_id if device and device.patient else None
    refused_rows.sort(key=lambda r: r.location.position if r.location else 0)
    return readings, wards, refused_rows


def _reading(
    parsed: Pcd01Message, o: Observation, *, device: Device | None, window: RecordedAtWindow
) -> ReadingIn:
    where = o.device_location or Location("OBX", o.index, 18)
    if device is None:
        raise Refusal.unknown(
            f"OBX {o.index}: no device has the serial {o.device_serial!r}.",
            code="unknown_device",
            location=where,
        )
    if not device.is_active:
        raise Refusal(
            f"OBX {o.index}: the device {device.serial!r} is deactivated.",
            code="device_inactive",
            location=where,
        )
    target = device_target(device)
    if target is None:
        raise Refusal.unknown(
            f"OBX {o.index}: the device {device.serial!r} is not assigned to a patient.",
            code="device_unassigned",
            location=where,
        )
    assert device.patient is not None  # device_target said so
    if o.mrns and device.patient.mrn not in o.mrns:
        # Data of one patient filed under another is a clinical hazard: never stored.
        raise Refusal.unknown(
            f"OBX {o.index}: PID-3 {' / '.join(o.mrns)!r} is not the MRN of the patient the "
            f"device {device.serial!r} is assigned to.",
            code="patient_mismatch",
            location=Location("PID", 1, 3),
        )
    raw = {
        "metric": str(o.metric),
        "bpm": o.value,
        "recorded_at": o.recorded_at.isoformat(),
        "seq": observation_seq(control_id=parsed.control_id, index=o.index),
    }
    try:
        return reading_parse(raw, target=target, require_seq=True, window=window)
    except ApplicationError as exc:
        time_field = o.time_location
        problems = "; ".join(
            (
                "OBX-5"
                if key == "bpm"
                else f"{time_field.segment}-{time_field.field}"
                if key == "recorded_at"
                else key
            )
            + ": "
            + " ".join(messages)
            for key, messages in (exc.details or {}).items()
        )
        on_time = bool(exc.details and "recorded_at" in exc.details)
        raise Refusal(
            f"OBX {o.index}: {exc.message} {problems}".strip(),
            code=exc.code,
            location=time_field if on_time else Location("OBX", o.index, 5),
        ) from exc
