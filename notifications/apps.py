from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from alerts.signals import alert_changed
        from notifications.receivers import alert_changed_deliver

        alert_changed.connect(alert_changed_deliver, dispatch_uid="notifications.deliver")
