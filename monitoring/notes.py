"""Strip notes: a clinician's marks on a patient's trace (writes, reads and the one payload).

A note belongs to the monitoring record it annotates (the trace's time line, its live frames
and the CTG record), so this app owns it. The author may correct a note for
``NOTE_EDIT_MINUTES``; afterwards it is part of the record and is only annotated (an addendum,
itself a note, keeps the original as it was). Every change reaches the dashboards watching the
patient as a ``note`` frame once it is committed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from accounts.models import User
from clinical.models import Patient
from common.errors import Conflict, PermissionDenied, ValidationFailed
from monitoring.live.events import note_events
from monitoring.live.publish import live_publish
from monitoring.models import StripNote

logger = logging.getLogger(__name__)

NOTE_MAX_LENGTH = 1000
# A note may be about a moment a little ahead of the server's clock (a phone's clock that
# runs fast); further ahead is a mistake.
NOTE_FUTURE_TOLERANCE = timedelta(minutes=5)


def note_edit_window() -> timedelta:
    return timedelta(minutes=float(settings.NOTE_EDIT_MINUTES))


# --- Payload ---------------------------------------------------------------------------------


def _author(note: StripNote) -> dict[str, Any]:
    return {"id": note.author_id, "name": note.author_name}


def note_payload(note: StripNote, addenda: list[StripNote] | None = None) -> dict[str, Any]:
    """The one representation of a note: REST answers, live frames and the CTG record."""
    if addenda is None:
        addenda = list(note.addenda.all())
    return {
        "id": note.id,
        "patient": note.patient_id,
        "at": note.at.isoformat(),
        "text": note.text,
        "author": _author(note),
        "created_at": note.created_at.isoformat(),
        "edited_at": note.edited_at.isoformat() if note.edited_at else None,
        "editable_until": (note.created_at + note_edit_window()).isoformat(),
        "addenda": [
            {
                "id": a.id,
                "text": a.text,
                "author": _author(a),
                "created_at": a.created_at.isoformat(),
            }
            for a in sorted(addenda, key=lambda a: (a.created_at, a.id))
        ],
    }


# --- Reads -----------------------------------------------------------------------------------


def notes_of_patient(
    *, patient_id: int, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[StripNote]:
    """A patient's notes (not their addenda, which come prefetched) in [start, end) by ``at``."""
    qs = StripNote.objects.filter(patient_id=patient_id, addendum_to__isnull=True)
    if start is not None:
        qs = qs.filter(at__gte=start)
    if end is not None:
        qs = qs.filter(at__lt=end)
    return qs.prefetch_related(
        Prefetch("addenda", queryset=StripNote.objects.order_by("created_at", "id"))
    )


def note_of_patient(*, patient_id: int, note_id: int) -> StripNote | None:
    return notes_of_patient(patient_id=patient_id).filter(id=note_id).first()


# --- Writes ----------------------------------------------------------------------------------


def _text_clean(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed(
            "A note needs a text.", details={"text": ["This field is required."]}
        )
    cleaned: str = text.strip()
    if len(cleaned) > NOTE_MAX_LENGTH:
        raise ValidationFailed(
            "The note is too long.",
            details={"text": [f"At most {NOTE_MAX_LENGTH} characters."]},
        )
    return cleaned


def _at_check(at: datetime, *, now: datetime) -> None:
    if at > now + NOTE_FUTURE_TOLERANCE:
        raise ValidationFailed(
            "A note cannot be about a moment in the future.",
            details={"at": ["Must not be later than now."]},
        )


def _publish_on_commit(*, note: StripNote, ward_id: int | None, action: str) -> None:
    def publish() -> None:
        try:
            fresh = note_of_patient(patient_id=note.patient_id, note_id=note.id)
            if fresh is not None:
                live_publish(
                    note_events(
                        patient_id=note.patient_id,
                        ward_id=ward_id,
                        action=action,
                        note=note_payload(fresh),
                    )
                )
        except Exception:  # the note is stored; dashboards load notes when they open a strip
            logger.exception("could not publish note %s", note.id)

    transaction.on_commit(publish)


def _note_create(
    *, patient: Patient, author: User, at: datetime, text: Any, **fields: Any
) -> StripNote:
    """A note or an addendum: its text cleaned, its author's name kept as it was then."""
    return StripNote.objects.create(
        patient=patient,
        at=at,
        text=_text_clean(text),
        author=author,
        author_name=author.get_full_name(),
        **fields,
    )


@transaction.atomic
def note_add(*, patient: Patient, author: User, at: datetime, text: Any) -> StripNote:
    """Write a note at ``at`` of the patient's trace."""
    now = timezone.now()
    _at_check(at, now=now)
    note = _note_create(patient=patient, author=author, at=at, text=text, created_at=now)
    _publish_on_commit(note=note, ward_id=patient.ward_id, action="created")
    return note


@transaction.atomic
def note_edit(
    *,
    patient: Patient,
    note: StripNote,
    user: User,
    text: Any = None,
    at: datetime | None = None,
) -> StripNote:
    """The author corrects a note within ``NOTE_EDIT_MINUTES`` of writing it, before anyone
    annotated it; later, or by anyone else, it can only be annotated."""
    now = timezone.now()
    if note.author_id != user.id:
        raise PermissionDenied(
            "Only the author may change a note; add an addendum instead.",
            code="note_not_author",
        )
    if now > note.created_at + note_edit_window() or note.addenda.exists():
        raise Conflict(
            "The note is part of the record now; add an addendum instead.",
            code="note_locked",
        )
    fields = ["edited_at"]
    if text is not None:
        note.text = _text_clean(text)
        fields.append("text")
    if at is not None:
        _at_check(at, now=now)
        note.at = at
        fields.append("at")
    note.edited_at = now
    note.save(update_fields=fields)
    _publish_on_commit(note=note, ward_id=patient.ward_id, action="edited")
    return note


@transaction.atomic
def note_annotate(*, patient: Patient, note: StripNote, author: User, text: Any) -> StripNote:
    """Add an addendum to a note (anyone who may see the patient); the note stays as it was."""
    addendum = _note_create(patient=patient, author=author, at=note.at, text=text, addendum_to=note)
    _publish_on_commit(note=note, ward_id=patient.ward_id, action="annotated")
    return addendum
