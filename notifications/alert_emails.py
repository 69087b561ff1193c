"""E-mail text for alert events: the raise/escalation of an alarm to clinicians, and the
escalation of an unacknowledged high-priority alarm to admins."""

from __future__ import annotations

from django.utils import timezone

from clinical.models import Alert, AlertEvent

_SUBJECT_PREFIX = {
    "raised": "Alarm",
    "updated": "Alarm escalated",
    "escalated": "UNACKNOWLEDGED alarm",
    "acknowledged": "Alarm acknowledged",
    "resolved": "Alarm resolved",
}


def alert_email_render(*, alert: Alert, event: AlertEvent) -> tuple[str, str]:
    """Subject and plain-text body for one alert event."""
    patient = alert.patient
    where = patient.place.name
    if patient.ward_id is not None:
        where = f"{where} / {patient.ward.name}"
    if patient.bed:
        where = f"{where}, bed {patient.bed}"
    prefix = _SUBJECT_PREFIX.get(event.action, "Alarm")
    subject = (
        f"[{alert.priority.upper()}] {prefix}: {alert.kind.replace('_', ' ')} - "
        f"{patient.name} ({where})"
    )
    at = timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S %Z")
    lines = [
        f"{prefix} ({alert.priority} priority) for {patient.name}, MRN {patient.mrn}.",
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
    from clinical.alerts import Action, alert_escalation_recipients, alert_recipients

    alert = event.alert
    if event.action in (Action.RAISED, Action.UPDATED):
        users = alert_recipients(alert=alert)
    elif event.action == Action.ESCALATED:
        users = alert_escalation_recipients(alert=alert)
    else:
        users = []
    return list(dict.fromkeys(user.email for user in users if user.email))


def alert_event_email(*, event_id: int) -> int:
    """E-mail one alert event to each recipient once; returns how many were sent now.

    Each send is recorded (AlertNotification); a recipient already marked sent is skipped,
    so a retried or duplicated task never e-mails anyone twice. A failure is recorded and
    re-raised for the task to retry the remaining recipients.
    """
    from django.core.mail import EmailMessage

    from clinical.models import AlertNotification

    event = (
        AlertEvent.objects.select_related("alert__patient__place", "alert__patient__ward")
        .filter(pk=event_id)
        .first()
    )
    if event is None:
        return 0
    subject, body = alert_email_render(alert=event.alert, event=event)
    sent = 0
    for address in alert_event_recipients(event=event):
        record, _ = AlertNotification.objects.get_or_create(
            event=event, channel=AlertNotification.Channel.EMAIL, recipient=address
        )
        if record.sent_at is not None:
            continue
        record.attempts += 1
        try:
            EmailMessage(subject=subject, body=body, to=[address]).send()
        except Exception as exc:
            record.last_error = str(exc)[:500]
            record.save(update_fields=["attempts", "last_error"])
            raise
        record.sent_at = timezone.now()
        record.last_error = ""
        record.save(update_fields=["attempts", "sent_at", "last_error"])
        sent += 1
    return sent
