"""Django admin of deliveries."""

from __future__ import annotations

from django.contrib import admin

from notifications.models import AlertNotification


@admin.register(AlertNotification)
class AlertNotificationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "event",
        "channel",
        "recipient",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("channel", "state")
    raw_id_fields = ("event",)
