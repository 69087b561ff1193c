from __future__ import annotations

from django.apps import AppConfig


class Hl7V2Config(AppConfig):
    name = "hl7v2"
    verbose_name = "HL7 v2 (MLLP)"

    def ready(self) -> None:
        from alerts.signals import alert_changed
        from hl7v2.receivers import alert_changed_report

        alert_changed.connect(alert_changed_report, dispatch_uid="hl7v2.report")
