"""Alert lifecycle: raise, update, acknowledge, resolve, escalate.

At most one open (active or acknowledged) alert per patient and kind, enforced by the
``one_open_alert_per_patient_kind`` constraint; a repeat of the condition updates that alert.
Every transition writes an ``AlertEvent`` (who and when); once committed it is published to
the patient's dashboards and announced with the ``alert_changed`` signal (delivery by e-mail
and webhook listens to it).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from alerts.audio import alarm_audio_new_high_alarm
from alerts.metrics import alert_event_count
from alerts.models import Alert, AlertEvent
from alerts.selectors import alert_get_visible, alerts_due_escalation
from alerts.services.publishing import alert_publish
from alerts.signals import alert_changed
from alerts.vocabulary import OPEN_STATES, PRIORITY_RANK, Action, Priority
from common.errors import Conflict
from common.logs import log_ids

logger = logging.getLogger(__name__)


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
