"""Celery beat tasks of alerts: the device-offline scan and the escalation scan.

The task names are kept from earlier releases (the beat schedule and queued tasks name them).
"""

from __future__ import annotations

from celery import shared_task

from alerts.offline import alarms_offline_scan
from alerts.services import alerts_escalate_due


@shared_task(name="notifications.tasks.alerts_offline_scan", acks_late=True)
def alerts_offline_scan() -> int:
    """Beat: raise device_offline for silent devices, resolve it for those back."""
    return len(alarms_offline_scan())


@shared_task(name="notifications.tasks.alerts_escalation_scan", acks_late=True)
def alerts_escalation_scan() -> int:
    """Beat: escalate high-priority alerts unacknowledged for ALERT_ESCALATION_SECONDS."""
    return len(alerts_escalate_due())
