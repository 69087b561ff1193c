"""Celery task of outbound HL7: one alert event to the place's alert manager, with retries."""

from __future__ import annotations

from celery import shared_task

from common.tasks import RetryPolicy
from hl7v2.delivery import AlertManagerError, alert_event_report

REPORT_RETRY: RetryPolicy = {
    "autoretry_for": (AlertManagerError, OSError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,  # an alarm is worth little late: retry often
    "retry_jitter": True,
    "max_retries": 20,
    "acks_late": True,
}


@shared_task(name="hl7v2.tasks.alert_event_report", **REPORT_RETRY)
def alert_event_report_task(event_id: int) -> bool:
    """Send the PCD-04 report of one alert event; idempotent (the delivery is recorded)."""
    return alert_event_report(event_id=event_id)
