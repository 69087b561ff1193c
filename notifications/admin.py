"""Django admin of deliveries."""

from __future__ import annotations

from django.contrib import admin

from notifications.models import AlertNotification


@admin.register(AlertNotification)
class AlertNotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "event", "channel", "recipient", "sent_at", "attempts")
    list_filter = ("channel",)
    raw_id_fields = ("event",)
