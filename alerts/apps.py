from __future__ import annotations

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts import live
        from alerts.selectors import alert_spans
        from monitoring.partitions import retention_keep_register

        live.register()
        # Readings retention archives the readings around every alert before it drops them.
        retention_keep_register("alerts", alert_spans)
