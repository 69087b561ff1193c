"""What one pass of the alarm rules changed: the alerts it raised, escalated or resolved, in
order. The rule steps (``batch_evaluation``, ``ctg_alarms``, ``offline``) write through it and
return its ``alerts`` to their callers."""

from __future__ import annotations

from datetime import datetime

from alerts import services
from alerts.models import Alert


class AlertChanges:
    """The alerts of one pass, each change dated ``at`` (the pass's time)."""

    def __init__(self, *, at: datetime) -> None:
        self.at = at
        self.alerts: list[Alert] = []

    def raise_alert(
        self, *, patient_id: int, device_id: int | None, kind: str, priority: str, message: str
    ) -> Alert:
        """Raise the alert, or escalate the open one (``services.alert_raise``)."""
        alert = services.alert_raise(
            patient_id=patient_id,
            device_id=device_id,
            kind=kind,
            priority=priority,
            message=message,
            at=self.at,
        )
        self.alerts.append(alert)
        return alert

    def resolve(self, *, patient_id: int, kind: str, note: str) -> None:
        """The condition ended: resolve the patient's open alert of this kind, if any."""
        alert = services.alert_condition_resolve(
            patient_id=patient_id, kind=kind, at=self.at, note=note
        )
        if alert is not None:
            self.alerts.append(alert)
