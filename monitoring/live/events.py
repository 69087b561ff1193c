"""The live events a flush or a device connection sends, and the group each goes on."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from clinical.signals import PatientChanged
from monitoring.live.groups import patient_group, ward_group
from monitoring.readings import StoredReading

# What is published: (group, event) pairs; an event is a dict whose "type" names the handler
# of its receivers (``reading.batch`` -> ``reading_batch``).
Event = tuple[str, dict[str, Any]]
Events = Sequence[Event]


class LiveEvent:
    """One published event as the receivers of one process get it (``live.hub`` makes one per
    event and hands the same to every member). Its JSON is encoded once, for the other
    processes and for every receiver here, without writing into the event, which stays as
    published."""

    __slots__ = ("_retyped", "_text", "data")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._text: str | None = None
        self._retyped: str | None = None

    def text(self) -> str:
        """The event as JSON (what the hub publishes to the other processes), encoded once."""
        if self._text is None:
            self._text = json.dumps(self.data, separators=(",", ":"))
        return self._text

    def retyped(self, frame_type: str) -> str:
        """The JSON text of the frame that carries this event's fields under another type
        (a ``reading.batch`` reaches a ward's dashboards as ``readings``), made once from
        :meth:`text` by replacing the type at its head: the items are not encoded again. Every
        receiver of an event asks for the same frame."""
        if self._retyped is None:
            head = _type_head(self.data["type"])
            text = self.text()
            if text.startswith(head):  # "type" is the first field of every event built here
                self._retyped = _type_head(frame_type) + text[len(head) :]
            else:
                self._retyped = json.dumps({**self.data, "type": frame_type}, separators=(",", ":"))
        return self._retyped


def _type_head(event_type: str) -> str:
    return '{"type":' + json.dumps(event_type)


def scope_group(*, ward_id: int | None, patient_id: int) -> str:
    """The one group that carries a patient's live events: its ward's group, or the patient's
    own group when the patient has no ward. Dashboards watching a single patient listen on
    that group and filter by patient, so a flush costs one group_send per ward, however many
    patients are watched (a per-patient copy made flushes several times more expensive)."""
    return ward_group(ward_id) if ward_id is not None else patient_group(patient_id)


def reading_batch_events(stored: Iterable[StoredReading]) -> list[Event]:
    """``reading.batch`` group messages for stored readings: ONE per ward (per flush)."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for reading in stored:
        group = scope_group(ward_id=reading.ward_id, patient_id=reading.patient_id)
        by_group.setdefault(group, []).append(reading_item(reading))
    return [(g, {"type": "reading.batch", "items": items}) for g, items in by_group.items()]


def reading_item(reading: StoredReading) -> dict[str, Any]:
    """The live ``readings`` frame item (msgpack-safe: only ints and strings)."""
    item = reading.as_event()  # a new dict: completed in place, not copied
    item["ward"] = reading.ward_id
    return item


def device_status_events(
    *,
    device_id: int,
    serial: str,
    patient_id: int,
    ward_id: int | None,
    online: bool,
    last_seen_at: str | None,
) -> list[Event]:
    event = {
        "type": "device.status",
        "device": device_id,
        "serial": serial,
        "patient": patient_id,
        "ward": ward_id,
        "online": online,
        "status": "online" if online else "offline",
        "last_seen_at": last_seen_at,
    }
    return [(scope_group(ward_id=ward_id, patient_id=patient_id), event)]


def note_events(
    *, patient_id: int, ward_id: int | None, action: str, note: dict[str, Any]
) -> list[Event]:
    """A strip note was written, corrected or annotated (``monitoring.notes``): one message on
    the group that carries the patient's live events."""
    event = {
        "type": "note.event",
        "patient": patient_id,
        "ward": ward_id,
        "action": action,
        "note": note,
    }
    return [(scope_group(ward_id=ward_id, patient_id=patient_id), event)]


def patient_events(*, change: PatientChanged, entry: dict[str, Any] | None) -> list[Event]:
    """A patient was admitted, moved, updated or discharged: one message on the group that
    carries the patient's live events now and, when the patient left it, one on the group
    that carried them before (its dashboards drop the tile). ``entry`` is the patient as a
    snapshot lists them; each dashboard decides what of it its viewer may see."""
    patient_id = change.patient_id
    event = {
        "type": "patient.changed",
        "action": str(change.action),
        "patient": patient_id,
        "place": change.place_id,
        "ward": change.ward_id,
        "from_place": change.from_place_id,
        "from_ward": change.from_ward_id,
        "entry": entry,
    }
    groups = [scope_group(ward_id=change.ward_id, patient_id=patient_id)]
    before = scope_group(ward_id=change.from_ward_id, patient_id=patient_id)
    if before not in groups:
        groups.append(before)
    return [(group, event) for group in groups]
