"""Celery task of outbound HL7, kept for messages queued by an earlier release: alert reports
are deliveries of the outbox now (``notifications.tasks.notification_deliver``)."""

from __future__ import annotations

from celery import shared_task

from alerts.selectors import alert_event_get
from hl7v2.delivery import AlertManagerTransport
from notifications.delivery import deliveries_plan
from notifications.tasks import deliveries_queue


@shared_task(name="hl7v2.tasks.alert_event_report", acks_late=True)
def alert_event_report_task(event_id: int) -> int:
    """Plan the PCD-04 report of one alert event in the outbox and queue it."""
    event = alert_event_get(event_id=event_id)
    if event is None:
        return 0
    return deliveries_queue(deliveries_plan(event=event, transport=AlertManagerTransport()))
