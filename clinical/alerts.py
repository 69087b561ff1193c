"""Alert lifecycle: raise, update, acknowledge, resolve, escalate; and the alert selectors.

At most one open (active or acknowledged) alert per patient and kind, enforced by the
``one_open_alert_per_patient_kind`` constraint; a repeat of the condition updates that alert.
Every transition writes an ``AlertEvent`` (who and when) and, once committed, is published to
the ward's and the patient's dashboards and queued for e-mail/webhook fan-out.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Role, User
from accounts.selectors import user_place_ids
from clinical.models import AlarmLimit, Alert, AlertEvent, Patient
from config.errors import Conflict, NotFound, ValidationFailed

logger = logging.getLogger(__name__)

OPEN_STATES = (Alert.State.ACTIVE, Alert.State.ACKNOWLEDGED)
PRIORITY_RANK = {Alert.Priority.LOW: 1, Alert.Priority.MEDIUM: 2, Alert.Priority.HIGH: 3}


class Action:
    RAISED = "raised"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


# --- Selectors ------------------------------------------------------------------------------


def alerts_visible(*, user: User) -> QuerySet[Alert]:
    """Alerts of the places the person may see."""
    queryset = Alert.objects.select_related("patient", "acknowledged_by")
    place_ids = user_place_ids(user)
    if place_ids is not None:
        queryset = queryset.filter(patient__place_id__in=place_ids)
    return queryset


def alert_get_visible(*, user: User, alert_id: int) -> Alert:
    alert = alerts_visible(user=user).filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("No such alert.")
    return alert


def alert_open(*, patient_id: int, kind: str) -> Alert | None:
    return Alert.objects.filter(patient_id=patient_id, kind=kind, state__in=OPEN_STATES).first()


def alerts_due_escalation(*, now: datetime | None = None) -> QuerySet[Alert]:
    """High-priority alerts still active after ALERT_ESCALATION_SECONDS since they became
    high (``updated_at``) or since their last escalation."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ALERT_ESCALATION_SECONDS)
    return (
        Alert.objects.filter(state=Alert.State.ACTIVE, priority=Alert.Priority.HIGH)
        .annotate(
            last_escalated_at=Max("events__at", filter=Q(events__action=Action.ESCALATED)),
        )
        .annotate(escalation_base=Coalesce("last_escalated_at", "updated_at"))
        .filter(escalation_base__lte=cutoff)
        .order_by("id")
    )


def alert_recipients(*, alert: Alert) -> list[User]:
    """The doctors and nurses of the alert's place: they get every raise by e-mail."""
    return list(
        User.objects.filter(
            is_active=True, role__in=(Role.DOCTOR, Role.NURSE), places=alert.patient.place_id
        )
        .exclude(email="")
        .order_by("id")
    )


def alert_escalation_recipients(*, alert: Alert) -> list[User]:
    """The place's admins, or every admin when the place has none."""
    admins = User.objects.filter(is_active=True).filter(Q(role=Role.ADMIN) | Q(is_superuser=True))
    members = list(admins.filter(places=alert.patient.place_id).order_by("id"))
    return members or list(admins.order_by("id"))


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert as dashboards and webhooks see it (the REST representation's fields)."""
    from clinical.alarms import KIND_METRIC

    patient = alert.patient

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": alert.id,
        "patient": alert.patient_id,
        "patient_name": patient.name,
        "bed": patient.bed,
        "ward": patient.ward_id,
        "place": patient.place_id,
        "device": alert.device_id,
        "kind": alert.kind,
        "metric": KIND_METRIC.get(alert.kind),
        "priority": alert.priority,
        "state": alert.state,
        "message": alert.message,
        "raised_at": iso(alert.raised_at),
        "updated_at": iso(alert.updated_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by_id,
        "resolved_at": iso(alert.resolved_at),
    }


# --- Delivery -------------------------------------------------------------------------------


def alert_publish(*, alert: Alert, action: str) -> None:
    """Send the alert to its ward's and patient's dashboard groups (never raises).

    Each message names its ``group`` and ``ward`` so a dashboard that watches both the ward
    and the patient drops the duplicate.
    """
    from monitoring.groups import patient_group, ward_group

    payload = alert_payload(alert)
    ward_id = alert.patient.ward_id
    groups = [patient_group(alert.patient_id)]
    if ward_id is not None:
        groups.insert(0, ward_group(ward_id))
    events = [
        (
            group,
            {
                "type": "alert.event",
                "group": group,
                "ward": ward_id,
                "action": action,
                "alert": payload,
            },
        )
        for group in groups
    ]
    try:
        _groups_send(events)
    except Exception:  # the alert is stored; dashboards resynchronise from the snapshot
        logger.exception("could not publish alert %s to dashboards", alert.id)


def _groups_send(events: list[tuple[str, dict[str, Any]]]) -> None:
    from monitoring.pipeline import groups_send, groups_send_sync

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        groups_send_sync(events)
    else:
        # Called on an event loop's own thread: never block it, schedule the send.
        task = loop.create_task(groups_send(events))
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()


def _after_commit(alert: Alert, event: AlertEvent) -> None:
    """Publish to dashboards and queue the fan-out once the transition is committed."""

    def deliver() -> None:
        # Dashboards hear of state changes; an escalation changes nothing they show.
        if event.action != Action.ESCALATED:
            alert_publish(alert=alert, action=event.action)
        from notifications.tasks import alert_event_notify

        try:
            alert_event_notify.delay(event.id)
        except Exception:  # broker down: the event stays recorded; log loudly
            logger.exception("could not queue notifications for alert event %s", event.id)

    transaction.on_commit(deliver)


def _record(
    alert: Alert, action: str, *, at: datetime, by: User | None = None, note: str = ""
) -> AlertEvent:
    event = AlertEvent.objects.create(alert=alert, action=action, at=at, by=by, note=note[:500])
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
                alert = (
                    Alert.objects.select_for_update(of=("self",))
                    .select_related("patient")
                    .filter(patient_id=patient_id, kind=kind, state__in=OPEN_STATES)
                    .first()
                )
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


def alert_condition_resolve(
    *, patient_id: int, kind: str, at: datetime | None = None, note: str = ""
) -> Alert | None:
    """The condition ended: resolve the open alert of this patient and kind, if any."""
    at = at or timezone.now()
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("patient")
            .filter(patient_id=patient_id, kind=kind, state__in=OPEN_STATES)
            .first()
        )
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


def alert_events_undelivered(
    *, now: datetime | None = None, older_than: int = 60, window: int = 900
) -> list[int]:
    """Recent events whose fan-out never started (no delivery recorded at all), e.g. because
    the broker was unreachable when the transition committed. Events that notify nobody by
    e-mail and have no webhook are left out."""
    from clinical.models import AlertNotification

    now = now or timezone.now()
    emailed = (Action.RAISED, Action.UPDATED, Action.ESCALATED)
    return list(
        AlertEvent.objects.filter(
            at__gte=now - timedelta(seconds=window), at__lte=now - timedelta(seconds=older_than)
        )
        .filter(Q(action__in=emailed) | ~Q(alert__patient__place__webhook_url=""))
        .exclude(Exists(AlertNotification.objects.filter(event=OuterRef("pk"))))
        .order_by("id")
        .values_list("id", flat=True)
    )


# --- Alarm limits ---------------------------------------------------------------------------


def alarm_limits_validate(*, profile: str, metric: str, values: dict[str, Any]) -> None:
    from clinical.alarms import HOLD_FIELDS, PROFILE_METRICS, THRESHOLD_FIELDS
    from monitoring.ingest import BPM_BOUNDS

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
    from clinical.alarms import HOLD_FIELDS, THRESHOLD_FIELDS

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
