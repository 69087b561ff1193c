from __future__ import annotations

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from accounts.signals import user_sessions_ended
        from clinical.signals import device_changed, patient_changed
        from monitoring.live.layer import over_capacity_counting_install
        from monitoring.receivers import (
            device_changed_recheck,
            patient_changed_publish,
            user_sessions_close,
        )

        over_capacity_counting_install()

        device_changed.connect(device_changed_recheck, dispatch_uid="monitoring.device_changed")
        user_sessions_ended.connect(user_sessions_close, dispatch_uid="monitoring.sessions_ended")
        patient_changed.connect(patient_changed_publish, dispatch_uid="monitoring.patient_changed")
