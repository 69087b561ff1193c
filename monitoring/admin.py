from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from monitoring.models import Reading


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    """Readings are clinical records: visible here, never edited or deleted by hand."""

    list_display = ("recorded_at", "patient", "metric", "value", "device", "seq", "received_at")
    list_filter = ("metric",)
    search_fields = ("patient__name", "patient__mrn", "device__serial")
    list_select_related = ("patient", "device")
    date_hierarchy = "recorded_at"
    show_full_result_count = False  # the table is large: avoid a COUNT(*) per page
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
