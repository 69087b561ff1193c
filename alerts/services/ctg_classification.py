"""The latest CTG classification of each obstetric patient: kept, and published once it changes."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from alerts.models import CtgClassification
from alerts.services.publishing import ctg_classification_publish

logger = logging.getLogger(__name__)

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _wording(reasons: list[str]) -> list[str]:
    """The reasons without their numbers: what stays when only a share or a count moves."""
    return [_NUMBER.sub("#", reason) for reason in reasons]


def ctg_classification_record(
    *,
    patient_id: int,
    ward_id: int | None,
    current: CtgClassification | None,
    classification: str,
    baseline_bpm: int | None,
    reasons: list[str],
    at: datetime,
) -> CtgClassification | None:
    """Keep the patient's latest CTG classification (``current``: its row, or None) and, once
    committed, publish it; returns the row, or None when nothing it shows changed (no write,
    no message: an unchanged classification costs nothing). A change of the numbers in the
    same reasons alone (a signal-loss share that moves by a fraction, the minutes a short
    recording still needs) is written at most every ``CTG_REASONS_REFRESH_SECONDS`` of the
    readings' time; a new classification, baseline or reason at once (the same class for
    another cause, such as "too short to classify" after "signal missing", is news)."""
    shown = (classification, baseline_bpm, list(reasons))
    if current is not None:
        if (current.classification, current.baseline_bpm, current.reasons) == shown:
            return None
        wording_only = (current.classification, current.baseline_bpm) == shown[:2] and _wording(
            current.reasons
        ) == _wording(shown[2])
        refresh = timedelta(seconds=float(settings.CTG_REASONS_REFRESH_SECONDS))
        if wording_only and at - current.at < refresh:
            return None
        if current.classification != classification:
            current.since = at
        current.classification, current.baseline_bpm, current.reasons = shown
        current.at = at
        current.save(update_fields=["classification", "baseline_bpm", "reasons", "since", "at"])
        row = current
    else:
        # One evaluator owns a patient at a time (the stream's partitions), so no other
        # writer can create the row in between.
        row = CtgClassification.objects.create(
            patient_id=patient_id,
            classification=classification,
            baseline_bpm=baseline_bpm,
            reasons=list(reasons),
            since=at,
            at=at,
        )
    transaction.on_commit(lambda: ctg_classification_publish(row=row, ward_id=ward_id))
    return row
