"""Alert lifecycle: raise, update, acknowledge, resolve, escalate; and per-patient limits.

At most one open (active or acknowledged) alert per patient and kind, enforced by the
``one_open_alert_per_patient_kind`` constraint; a repeat of the condition updates that alert.
Every transition writes an ``AlertEvent`` (who and when); once committed it is published to
the patient's dashboards and announced with the ``alert_changed`` signal (delivery by e-mail
and webhook listens to it).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from alerts.audio import alarm_audio_new_high_alarm
from alerts.ctg_rules import CTG_LIMIT_FIELDS, CTG_LIMIT_RANGES, CTG_NULLABLE_FIELDS
from alerts.metrics import alert_event_count
from alerts.models import AlarmLimit, Alert, AlertEvent, CtgAlarmLimit, CtgClassification
from alerts.payload import alert_payload, ctg_classification_payload
from alerts.rules import HOLD_FIELDS, PROFILE_METRICS, THRESHOLD_FIELDS
from alerts.selectors import alert_get_visible, alerts_due_escalation
from alerts.signals import alert_changed
from alerts.vocabulary import OPEN_STATES, PRIORITY_RANK, Action, Priority
from clinical.models import Patient
from common.errors import Conflict, ValidationFailed
from common.logs import log_ids
from monitoring.ingest import BPM_BOUNDS
from monitoring.realtime.events import scope_group
from monitoring.realtime.publish import groups_publish

logger = logging.getLogger(__name__)


# --- Delivery -------------------------------------------------------------------------------


def alert_publish(*, alert: Alert, action: str) -> None:
    """Send the alert to the dashboards watching its patient (never raises): one message on
    the group that carries the patient's live events (see ``scope_group``)."""
    ward_id = alert.patient.ward_id
    group = scope_group(ward_id=ward_id, patient_id=alert.patient_id)
    event = {
        "type": "alert.event",
        "ward": ward_id,
        "action": action,
        "alert": alert_payload(alert),
    }
    try:
        groups_publish([(group, event)])
    except Exception:  # the alert is stored; dashboards resynchronise from the snapshot
        logger.exception(
            "could not publish alert %s to dashboards", alert.id, extra=log_ids(alert=alert)
        )


def _after_commit(alert: Alert, event: AlertEvent) -> None:
    """Publish to dashboards and announce the event once the transition is committed."""

    def deliver() -> None:
        alert_event_count(alert=alert, event=event)  # metrics
        logger.info(
            "alert %s %s (%s, %s priority)",
            alert.id,
            event.action,
            alert.kind,
            alert.priority,
            extra=log_ids(alert=alert),
        )
        # Dashboards hear of state changes; an escalation changes nothing they show.
        if event.action != Action.ESCALATED:
            alert_publish(alert=alert, action=event.action)
        # A receiver that fails is logged by Django; the event stays recorded either way.
        alert_changed.send_robust(sender=Alert, alert=alert, event=event)

    transaction.on_commit(deliver)


def _record(
    alert: Alert, action: str, *, at: datetime, by: User | None = None, note: str = ""
) -> AlertEvent:
    event = AlertEvent.objects.create(alert=alert, action=action, at=at, by=by, note=note[:500])
    if action in (Action.RAISED, Action.UPDATED) and alert.priority == Priority.HIGH:
        alarm_audio_new_high_alarm(ward_id=alert.patient.ward_id)
    _after_commit(alert, event)
    return event


# --- Services -------------------------------------------------------------------------------


def alert_raise(
    *,
    patient_id: int,
    kind: str,
    priority: str,
    message: str,
    device_id: int | None = None,
    at: datetime | None = None,
) -> Alert:
    """Raise an alert, or update the open one of this patient and kind.

    A repeat at a higher priority escalates the open alert (and makes an acknowledged one
    active again: the worse condition needs a new acknowledgement); a repeat at the same or a
    lower priority changes nothing.
    """
    at = at or timezone.now()
    for _attempt in range(3):
        try:
            with transaction.atomic():
                alert = _open_locked(patient_id=patient_id, kind=kind)
                if alert is None:
                    alert = Alert.objects.create(
                        patient_id=patient_id,
                        device_id=device_id,
                        kind=kind,
                        priority=priority,
                        message=message[:500],
                        raised_at=at,
                        updated_at=at,
                    )
                    alert = Alert.objects.select_related("patient").get(pk=alert.pk)
                    _record(alert, Action.RAISED, at=at, note=message)
                    return alert
                if PRIORITY_RANK[priority] <= PRIORITY_RANK[alert.priority]:
                    return alert
                previous = alert.priority
                alert.priority = priority
                alert.message = message[:500]
                alert.updated_at = at
                update_fields = ["priority", "message", "updated_at"]
                if device_id is not None and alert.device_id is None:
                    alert.device_id = device_id
                    update_fields.append("device")
                if alert.state == Alert.State.ACKNOWLEDGED:
                    alert.state = Alert.State.ACTIVE
                    alert.acknowledged_at = None
                    alert.acknowledged_by = None
                    update_fields += ["state", "acknowledged_at", "acknowledged_by"]
                alert.save(update_fields=update_fields)
                _record(alert, Action.UPDATED, at=at, note=f"{previous} -> {priority}: {message}")
                return alert
        except IntegrityError:
            # Another process raised the same alert between our read and insert: update it.
            continue
    raise Conflict("The alert changed concurrently; try again.")


def _open_locked(*, patient_id: int, kind: str) -> Alert | None:
    """The open alert of this patient and kind, locked for this transaction."""
    return (
        Alert.objects.select_for_update(of=("self",))
        .select_related("patient")
        .filter(patient_id=patient_id, kind=kind, state__in=OPEN_STATES)
        .first()
    )


def alert_condition_resolve(
    *, patient_id: int, kind: str, at: datetime | None = None, note: str = ""
) -> Alert | None:
    """The condition ended: resolve the open alert of this patient and kind, if any."""
    at = at or timezone.now()
    with transaction.atomic():
        alert = _open_locked(patient_id=patient_id, kind=kind)
        if alert is None:
            return None
        _resolve(alert, at=at, by=None, note=note or "The condition ended.")
        return alert


def _resolve(alert: Alert, *, at: datetime, by: User | None, note: str) -> None:
    alert.state = Alert.State.RESOLVED
    alert.resolved_at = at
    alert.updated_at = at
    alert.save(update_fields=["state", "resolved_at", "updated_at"])
    _record(alert, Action.RESOLVED, at=at, by=by, note=note)


def _locked_visible(*, user: User, alert_id: int) -> Alert:
    alert_get_visible(user=user, alert_id=alert_id)  # 404 for other places
    return (
        Alert.objects.select_for_update(of=("self",))
        .select_related("patient", "acknowledged_by")
        .get(pk=alert_id)
    )


def alert_acknowledge(*, alert_id: int, user: User, at: datetime | None = None) -> Alert:
    """A person takes responsibility for an alert: it stops escalating. Acknowledging an
    acknowledged alert changes nothing; a resolved one is a conflict."""
    at = at or timezone.now()
    with transaction.atomic():
        alert = _locked_visible(user=user, alert_id=alert_id)
        if alert.state == Alert.State.RESOLVED:
            raise Conflict("The alert is already resolved.")
        if alert.state == Alert.State.ACKNOWLEDGED:
            return alert
        alert.state = Alert.State.ACKNOWLEDGED
        alert.acknowledged_at = at
        alert.acknowledged_by = user
        alert.updated_at = at
        alert.save(update_fields=["state", "acknowledged_at", "acknowledged_by", "updated_at"])
        _record(alert, Action.ACKNOWLEDGED, at=at, by=user)
        return alert


def alert_resolve(
    *, alert_id: int, user: User, at: datetime | None = None, note: str = ""
) -> Alert:
    """A person resolves an alert by hand; resolving a resolved alert is a conflict."""
    at = at or timezone.now()
    with transaction.atomic():
        alert = _locked_visible(user=user, alert_id=alert_id)
        if alert.state == Alert.State.RESOLVED:
            raise Conflict("The alert is already resolved.")
        _resolve(alert, at=at, by=user, note=note or "Resolved by hand.")
        return alert


def alert_escalate(*, alert_id: int, now: datetime | None = None) -> AlertEvent | None:
    """Record an escalation of a still-unacknowledged high alert (rechecked under lock, so
    overlapping scans escalate once per interval)."""
    now = now or timezone.now()
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("patient")
            .filter(pk=alert_id)
            .first()
        )
        if alert is None or not alerts_due_escalation(now=now).filter(pk=alert_id).exists():
            return None
        count = alert.events.filter(action=Action.ESCALATED).count() + 1
        waited = int((now - alert.raised_at).total_seconds())
        return _record(
            alert,
            Action.ESCALATED,
            at=now,
            note=f"Escalation {count}: unacknowledged for {waited} s.",
        )


def alerts_escalate_due(*, now: datetime | None = None) -> list[AlertEvent]:
    now = now or timezone.now()
    events = []
    for alert_id in alerts_due_escalation(now=now).values_list("id", flat=True):
        event = alert_escalate(alert_id=alert_id, now=now)
        if event is not None:
            events.append(event)
    return events


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
        elif not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
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


# --- The latest CTG classification ----------------------------------------------------------


def ctg_classification_publish(*, row: CtgClassification, ward_id: int | None) -> None:
    """Send the classification to the dashboards watching its patient (never raises): one
    message on the group that carries the patient's live events (see ``scope_group``)."""
    event = {
        "type": "ctg.classification",
        "ward": ward_id,
        "patient": row.patient_id,
        "ctg": ctg_classification_payload(row),
    }
    try:
        groups_publish([(scope_group(ward_id=ward_id, patient_id=row.patient_id), event)])
    except Exception:  # the row is stored; dashboards resynchronise from the snapshot
        logger.exception("could not publish the CTG classification of patient %s", row.patient_id)


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
    no message: an unchanged classification costs nothing). A change of the reasons' wording
    alone (a signal-loss share that moves by a fraction) is written at most every
    ``CTG_REASONS_REFRESH_SECONDS`` of the readings' time; a new classification or baseline at
    once."""
    shown = (classification, baseline_bpm, list(reasons))
    if current is not None:
        if (current.classification, current.baseline_bpm, current.reasons) == shown:
            return None
        wording_only = (current.classification, current.baseline_bpm) == shown[:2]
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


def alerts_patient_end(*, patient_id: int, at: datetime | None = None, note: str) -> list[Alert]:
    """The patient left monitoring (discharged, admission cancelled): every open alert of
    theirs is resolved, each with its event and live publication."""
    at = at or timezone.now()
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update(of=("self",))
            .filter(patient_id=patient_id, state__in=OPEN_STATES)
            .order_by("id")
        )
        for alert in alerts:
            _resolve(alert, at=at, by=None, note=note)
    return alerts


def alerts_patient_merge(*, from_patient_id: int, to_patient_id: int) -> int:
    """Move the alerts of one patient record to another (an ADT^A40 merge); the count moved.
    Their events follow them (they belong to the alert)."""
    return Alert.objects.filter(patient_id=from_patient_id).update(patient_id=to_patient_id)
