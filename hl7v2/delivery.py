"""Outbound HL7: alert events reported to a place's alert manager as PCD-04 ORU^R40 over MLLP,
one more transport of the deliveries outbox (``notifications.delivery``: each event delivered
to each alert manager once, retried with back-off, attempts and the last error recorded),
registered in ``Hl7V2Config.ready()``."""

from __future__ import annotations

import hl7
from django.conf import settings

from alerts.models import AlertEvent
from alerts.selectors import alert_event_get
from hl7v2.mllp import mllp_send_sync
from hl7v2.pcd04 import oru_r40_build
from notifications.delivery import event_deliver
from notifications.models import AlertNotification
from notifications.transports import Transport, TransportError


class AlertManagerError(TransportError):
    """The alert manager did not take the report (unreachable, no ACK, or not AA/CA):
    transient, tried again with back-off."""


def alert_manager_address(event: AlertEvent) -> str:
    """``host:port`` of the event's place's alert manager, or "" when it has none."""
    place = event.alert.patient.place
    if not place.alert_manager_host or not place.alert_manager_port:
        return ""
    return f"{place.alert_manager_host}:{place.alert_manager_port}"


class AlertManagerTransport(Transport):
    channel = AlertNotification.Channel.HL7

    def recipients(self, event: AlertEvent) -> list[str]:
        address = alert_manager_address(event)
        return [address] if address else []

    def send(self, event: AlertEvent, recipient: str, *, delivery_id: int) -> None:
        host, _, port = recipient.rpartition(":")
        report = oru_r40_build(event=event)
        try:
            answer = mllp_send_sync(
                host, int(port), report, timeout=settings.HL7_ALERT_MANAGER_TIMEOUT
            )
        except OSError as exc:  # refused, unreachable, timed out, closed without an ACK
            raise AlertManagerError(f"alert manager {recipient}: {exc!r}") from exc
        try:
            code = str(hl7.parse(answer).segment("MSA")(1))
        except (hl7.ParseException, KeyError, IndexError, ValueError) as exc:
            raise AlertManagerError(f"alert manager {recipient}: unreadable answer") from exc
        if code not in ("AA", "CA"):
            raise AlertManagerError(f"alert manager {recipient} answered {code}")


def alert_event_report(*, event_id: int) -> bool:
    """Report one alert event to its place's alert manager, here and now, if due; True when
    sent now."""
    event = alert_event_get(event_id=event_id)
    return event is not None and bool(event_deliver(event=event, transport=AlertManagerTransport()))
