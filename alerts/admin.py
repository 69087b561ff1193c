"""Django admin for alerts, their audit trail and alarm limits."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from alerts.ctg_rules import CTG_LIMIT_FIELDS
from alerts.models import (
    AlarmAudioPause,
    AlarmLimit,
    Alert,
    AlertEvent,
    CtgAlarmLimit,
    CtgClassification,
)
from alerts.rules import THRESHOLD_FIELDS


class AlertEventInline(admin.TabularInline[AlertEvent, Alert]):
    model = AlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ("action", "at", "by", "note")

    def has_add_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin[Alert]):
    list_display = ("id", "kind", "priority", "state", "patient", "raised_at", "acknowledged_by")
    list_filter = ("state", "priority", "kind", "patient__place")
    search_fields = ("patient__name", "patient__mrn", "message")
    date_hierarchy = "raised_at"
    raw_id_fields = ("patient", "device", "acknowledged_by")
    readonly_fields = ("raised_at", "updated_at", "acknowledged_at", "resolved_at")
    inlines = (AlertEventInline,)


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin[AlertEvent]):
    list_display = ("id", "alert", "action", "at", "by")
    list_filter = ("action",)
    raw_id_fields = ("alert", "by")

    def has_change_permission(self, request: HttpRequest, obj: AlertEvent | None = None) -> bool:
        return False  # the audit trail is append-only


@admin.register(AlarmAudioPause)
class AlarmAudioPauseAdmin(admin.ModelAdmin[AlarmAudioPause]):
    """Who paused a ward's alarm audio, for how long, and how it ended."""

    list_display = ("id", "ward", "mode", "by", "started_at", "ends_at", "ended_at", "end_reason")
    list_filter = ("mode", "end_reason", "ward__place")
    date_hierarchy = "started_at"
    raw_id_fields = ("ward", "by", "ended_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by the dashboard's pause

    def has_change_permission(
        self, request: HttpRequest, obj: AlarmAudioPause | None = None
    ) -> bool:
        return False  # the audit trail is append-only


@admin.register(AlarmLimit)
class AlarmLimitAdmin(admin.ModelAdmin[AlarmLimit]):
    audit_resource = "alarm_limits"  # as REST names it
    list_display = ("patient", "metric", *THRESHOLD_FIELDS, "updated_at")
    list_filter = ("metric",)
    raw_id_fields = ("patient", "updated_by")


@admin.register(CtgAlarmLimit)
class CtgAlarmLimitAdmin(admin.ModelAdmin[CtgAlarmLimit]):
    audit_resource = "ctg_alarm_limits"
    list_display = ("patient", *CTG_LIMIT_FIELDS, "updated_at")
    raw_id_fields = ("patient",)


@admin.register(CtgClassification)
class CtgClassificationAdmin(admin.ModelAdmin[CtgClassification]):
    """Read only: the alarm evaluator writes it."""

    list_display = ("patient", "classification", "baseline_bpm", "since", "at")
    list_filter = ("classification", "patient__place")
    search_fields = ("patient__name", "patient__mrn")
    readonly_fields = ("patient", "classification", "baseline_bpm", "reasons", "since", "at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: CtgClassification | None = None
    ) -> bool:
        return False
