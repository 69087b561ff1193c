"""E-mail text for alert events: the raise/escalation of an alarm to clinicians, and the
escalation of an unacknowledged high-priority alarm to admins."""

from __future__ import annotations

from django.utils import timezone

from alerts.models import Alert, AlertEvent
from alerts.selectors import alert_escalation_recipients, alert_recipients
from alerts.vocabulary import Action
from common.validators import control_characters_replace

_SUBJECT_PREFIX = {
    "raised": "Alarm",
    "updated": "Alarm escalated",
    "escalated": "UNACKNOWLEDGED alarm",
    "acknowledged": "Alarm acknowledged",
    "resolved": "Alarm resolved",
}


def alert_email_render(*, alert: Alert, event: AlertEvent) -> tuple[str, str]:
    """Subject and plain-text body for one alert event. Names are one line each: a control
    character stored before names were validated becomes a space (a line break in the
    subject would make the message unsendable, in the body a forged line)."""
    patient = alert.patient
    name, mrn = control_characters_replace(patient.name), control_characters_replace(patient.mrn)
    where = patient.place.name
    if patient.ward is not None:
        where = f"{where} / {patient.ward.name}"
    if patient.bed:
        where = f"{where}, bed {patient.bed}"
    where = control_characters_replace(where)
    prefix = _SUBJECT_PREFIX.get(event.action, "Alarm")
    subject = control_characters_replace(
        f"[{alert.priority.upper()}] {prefix}: {alert.kind.replace('_', ' ')} - {name} ({where})"
    )
    at = timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S %Z")
    lines = [
        f"{prefix} ({alert.priority} priority) for {name}, MRN {mrn}.",
        f"Where: {where}",
        f"What: {alert.message}",
        f"Raised at: {timezone.localtime(alert.raised_at).strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"This event: {event.action} at {at}",
    ]
    if event.note and event.note != alert.message:
        lines.append(f"Note: {event.note}")
    if event.action == "escalated":
        lines.append(
            "Nobody has acknowledged this high-priority alarm yet. Please make sure the patient "
            "is attended to and acknowledge the alarm on the dashboard."
        )
    else:
        lines.append("Acknowledge it on the ward dashboard once the patient is attended to.")
    lines.append(f"Alert id: {alert.id}")
    return subject, "\n".join(lines) + "\n"


def alert_event_recipients(*, event: AlertEvent) -> list[str]:
    """Who is e-mailed for this event: clinicians on a raise or a priority escalation,
    admins on an escalation of an unacknowledged alarm; nobody on acknowledge/resolve
    (the dashboards and the webhook carry those)."""
    alert = event.alert
    if event.action in (Action.RAISED, Action.UPDATED):
        users = alert_recipients(alert=alert)
    elif event.action == Action.ESCALATED:
        users = alert_escalation_recipients(alert=alert)
    else:
        users = []
    return list(dict.fromkeys(user.email for user in users if user.email))
