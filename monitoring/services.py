"""Writes of the monitoring app: readings posted over REST (by a device or by hand)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError

from accounts.models import User
from clinical.models import Device
from clinical.services import device_touch
from common import metrics
from common.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from common.ids import is_id, is_int
from monitoring.live.events import reading_batch_events
from monitoring.live.publish import live_publish
from monitoring.models import Reading, ReadingArchive, StripNote
from monitoring.readings import (
    ROW_ERRORS,
    ReadingIn,
    RecordedAtWindow,
    StoredReading,
    Target,
    reading_parse,
    readings_store,
)
from monitoring.selectors import device_target, patient_targets
from monitoring.stream.backlog import readings_queue

logger = logging.getLogger(__name__)


def readings_ingest(
    *,
    readings: Sequence[ReadingIn],
    wards: dict[int, int | None] | None = None,
    path: str = "rest",
) -> list[StoredReading]:
    """The synchronous ingest service (REST and HL7 paths): store and queue for alarm
    evaluation in one transaction, then publish what was new once it is committed. ``path``
    labels the ingest metrics: ``rest`` (the default) or ``hl7`` (the MLLP listener).

    The WebSocket path batches the same steps asynchronously (``ingest.batcher``). When the
    stream cannot take the readings (Redis unreachable) they are deferred to the backlog in
    the same transaction (``stream.backlog``): stored, and evaluated once Redis is back.
    """
    try:
        stored = readings_store(readings=readings, path=path, wards=wards, queue=readings_queue)
    except RedisError as exc:
        logger.error("readings not stored: the readings stream is unavailable (%r)", exc)
        raise ApplicationError(
            "Readings cannot be queued for alarm evaluation now; nothing was stored. "
            "Send them again shortly.",
            code="unavailable",
            status=503,
        ) from exc
    except ROW_ERRORS as exc:
        # Validation lets through only what the database holds; should a row still be refused,
        # the caller is told (nothing of the request is stored) instead of a 500.
        logger.error("readings not stored: the database refused them (%r)", exc)
        raise ValidationFailed(
            "The database refused these readings; nothing was stored.", code="not_storable"
        ) from exc
    if stored:
        # Dashboards hear of the readings only once they are committed.
        live_publish(reading_batch_events(stored), on_commit=True)
    return stored


# --- Readings over REST -----------------------------------------------------------------------


@dataclass
class RecordsResult:
    """The outcome of one POST of readings: what was stored, acked again, or refused."""

    stored: list[StoredReading] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def _as_batch(payload: Any) -> tuple[list[Any], bool]:
    """The items of the body and whether it was a list (partial acceptance) or one object."""
    if isinstance(payload, list):
        limit = settings.RECORDS_MAX_BATCH
        if not payload:
            raise ValidationFailed(
                "The list of readings is empty.",
                details={"non_field_errors": ["Send at least one reading."]},
            )
        if len(payload) > limit:
            raise ValidationFailed(
                f"At most {limit} readings per request.",
                code="batch_too_large",
                details={"non_field_errors": [f"Send at most {limit} readings per request."]},
            )
        return payload, True
    if isinstance(payload, dict):
        return [payload], False
    raise ValidationFailed(
        "Send one reading object or a list of them.",
        details={"non_field_errors": ["Expected a JSON object or a JSON array."]},
    )


def _finish(
    *,
    parsed: list[tuple[int, ReadingIn]],
    errors: dict[int, ApplicationError],
    items: list[Any],
    targets: list[Target],
) -> RecordsResult:
    """Store the valid readings through the shared ingest entry; report the rest per item."""
    readings = [r for _, r in parsed]
    wards = {t.patient_id: t.ward_id for t in targets}
    stored = readings_ingest(readings=readings, path="rest", wards=wards) if readings else []
    result = RecordsResult(stored=stored)
    # A seq is "stored" for the first item that carried it; any other item with it is a
    # duplicate (of an earlier request or of an earlier item of this one): acked, stored once.
    fresh = {(r.device_id, r.seq) for r in stored if r.seq is not None}
    for _, r in parsed:
        if r.device_id is None or r.seq is None:
            continue
        key = (r.device_id, r.seq)
        if key in fresh:
            fresh.discard(key)
        else:
            result.duplicates.append(r.seq)
    for index, error in sorted(errors.items()):
        raw = items[index]
        seq = raw.get("seq") if isinstance(raw, dict) else None
        result.rejected.append(
            {"index": index, "seq": seq if isinstance(seq, int) else None, **error.as_dict()}
        )
    return result


def _raise_if_nothing_accepted(
    *, errors: dict[int, ApplicationError], total: int, is_list: bool
) -> None:
    if len(errors) < total:
        return
    if not is_list:
        raise errors[0]
    raise ValidationFailed(
        "None of the readings is valid.",
        details={str(i): e.details or {"non_field_errors": [e.message]} for i, e in errors.items()},
    )


def readings_record_from_device(*, device: Device, payload: Any) -> RecordsResult:
    """A device POSTs its own readings: validated like the WebSocket path, seq required."""
    if not device.is_active:
        raise PermissionDenied("This device is deactivated.", code="device_inactive")
    device_touch(device=device)
    target = device_target(device)
    if target is None:
        raise Conflict(
            "This device is not assigned to a patient; readings cannot be stored.",
            code="device_unassigned",
        )
    items, is_list = _as_batch(payload)
    window = RecordedAtWindow.at()
    return _record(
        items,
        is_list=is_list,
        parse=lambda raw: reading_parse(raw, target=target, require_seq=True, window=window),
        targets=[target],
    )


def readings_record_manual(*, user: User, payload: Any) -> RecordsResult:
    """A clinician enters readings by hand: each names a visible patient; seq is optional."""
    items, is_list = _as_batch(payload)
    # Only what can be an id is looked up; the rest is refused item by item when parsed.
    patient_ids = {
        raw["patient"] for raw in items if isinstance(raw, dict) and is_id(raw.get("patient"))
    }
    targets = patient_targets(user=user, patient_ids=patient_ids)
    window = RecordedAtWindow.at()
    return _record(
        items,
        is_list=is_list,
        parse=lambda raw: _parse_manual(raw, user=user, targets=targets, window=window),
        targets=list(targets.values()),
    )


def _record(
    items: list[Any],
    *,
    is_list: bool,
    parse: Callable[[Any], ReadingIn],
    targets: list[Target],
) -> RecordsResult:
    """Parse every item, refuse the request if none is valid, store the valid ones."""
    parsed: list[tuple[int, ReadingIn]] = []
    errors: dict[int, ApplicationError] = {}
    for index, raw in enumerate(items):
        try:
            parsed.append((index, parse(raw)))
        except ApplicationError as exc:
            errors[index] = exc
            metrics.READINGS_REJECTED.labels(code=exc.code).inc()  # metrics
    _raise_if_nothing_accepted(errors=errors, total=len(items), is_list=is_list)
    return _finish(parsed=parsed, errors=errors, items=items, targets=targets)


def _parse_manual(
    raw: Any, *, user: User, targets: dict[int, Target], window: RecordedAtWindow
) -> ReadingIn:
    if not isinstance(raw, dict):
        raise ValidationFailed("A reading must be a JSON object.")
    patient_id = raw.get("patient")
    if not is_int(patient_id):
        raise ValidationFailed(
            "The reading is not valid.",
            details={"patient": ["A patient id is required for a manual reading."]},
        )
    target = targets.get(patient_id)
    if target is None:
        raise NotFound("No such patient.", details={"patient": ["No such patient."]})
    return reading_parse(
        raw, target=target, require_seq=False, window=window, entered_by_id=user.id
    )


def readings_patient_merge(*, from_patient_id: int, to_patient_id: int) -> int:
    """Move every reading (live and archived) and strip note of one patient record to another
    (an HL7 ADT^A40 merge of two records of the same person); the count of readings moved.
    (device, seq) keys do not change, so no reading can collide or be lost."""
    with transaction.atomic():
        moved = Reading.objects.filter(patient_id=from_patient_id).update(patient_id=to_patient_id)
        moved += ReadingArchive.objects.filter(patient_id=from_patient_id).update(
            patient_id=to_patient_id
        )
        StripNote.objects.filter(patient_id=from_patient_id).update(patient_id=to_patient_id)
    return moved
