"""Per-patient alarm limits: the heart-rate bands, and the CTG alarm settings."""

from __future__ import annotations

import logging
from itertools import pairwise
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from alerts.ctg_rules import CTG_LIMIT_FIELDS, CTG_LIMIT_RANGES, CTG_NULLABLE_FIELDS
from alerts.models import AlarmLimit, CtgAlarmLimit
from alerts.rules import HOLD_FIELDS, PROFILE_METRICS, THRESHOLD_FIELDS
from clinical.models import Patient
from common.errors import ValidationFailed
from common.ids import is_int
from monitoring.readings import BPM_BOUNDS

logger = logging.getLogger(__name__)


# --- Alarm limits ---------------------------------------------------------------------------


def alarm_limits_validate(*, profile: str, metric: str, values: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if metric not in PROFILE_METRICS.get(profile, ()):
        raise ValidationFailed(
            "The request is not valid.",
            details={"metric": [f"{metric} is not monitored for {profile} patients."]},
        )
    low, high = BPM_BOUNDS[metric]
    ordered: list[tuple[str, int]] = []
    for name in THRESHOLD_FIELDS:
        value = values.get(name)
        if value is None:
            continue
        if not low <= value <= high:
            errors[name] = [f"Must be between {low} and {high} bpm."]
        else:
            ordered.append((name, value))
    for (name_a, a), (name_b, b) in pairwise(ordered):
        if not a < b:
            errors.setdefault(name_b, []).append(f"Must be above {name_a} ({a}).")
    for name in HOLD_FIELDS:
        value = values.get(name)
        if value is None or not 0 <= value <= 3600:
            errors[name] = ["Must be between 0 and 3600 seconds."]
    if errors:
        raise ValidationFailed("The request is not valid.", details=errors)


def alarm_limits_set(
    *, patient: Patient, limits: list[dict[str, Any]], user: User | None = None
) -> list[AlarmLimit]:
    """Replace the patient's own limits for the metrics given (the others keep theirs)."""
    metrics = [item["metric"] for item in limits]
    if len(set(metrics)) != len(metrics):
        raise ValidationFailed(
            "The request is not valid.", details={"limits": ["Each metric may appear once."]}
        )
    for item in limits:
        alarm_limits_validate(
            profile=patient.monitoring_profile, metric=item["metric"], values=item
        )
    saved = []
    now = timezone.now()
    with transaction.atomic():
        for item in limits:
            values = {name: item.get(name) for name in (*THRESHOLD_FIELDS, *HOLD_FIELDS)}
            limit, _ = AlarmLimit.objects.update_or_create(
                patient=patient,
                metric=item["metric"],
                defaults={**values, "updated_at": now, "updated_by": user},
            )
            saved.append(limit)
    return saved


def alarm_limits_reset(*, patient: Patient) -> None:
    """Back to the profile's defaults."""
    AlarmLimit.objects.filter(patient=patient).delete()


# --- CTG alarm settings ---------------------------------------------------------------------


def ctg_alarm_limits_set(
    *, patient: Patient, values: dict[str, Any], user: User | None = None
) -> CtgAlarmLimit:
    """Set the patient's own CTG alarm settings: ``values`` merged over the current ones.
    Only for obstetric patients; null switches an alarm off where the field allows it."""
    if patient.monitoring_profile != "obstetric":
        raise ValidationFailed(
            "The request is not valid.",
            details={"patient": ["CTG alarms are only for obstetric patients."]},
        )
    errors: dict[str, list[str]] = {}
    for name in CTG_LIMIT_FIELDS:
        value = values.get(name)
        low, high = CTG_LIMIT_RANGES[name]
        if value is None:
            if name not in CTG_NULLABLE_FIELDS:
                errors[name] = ["A value is required."]
        elif not is_int(value) or not low <= value <= high:
            errors[name] = [f"Must be an integer between {low} and {high}."]
    if errors:
        raise ValidationFailed("The request is not valid.", details=errors)
    limit, _ = CtgAlarmLimit.objects.update_or_create(
        patient=patient,
        defaults={
            **{name: values.get(name) for name in CTG_LIMIT_FIELDS},
            "updated_at": timezone.now(),
            "updated_by": user,
        },
    )
    return limit


def ctg_alarm_limits_reset(*, patient: Patient) -> None:
    """Back to the defaults."""
    CtgAlarmLimit.objects.filter(patient=patient).delete()
