from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from config.errors import ApplicationError
from monitoring import services
from monitoring.models import Device, Reading


class DeviceAdminForm(forms.ModelForm):
    class Meta:
        model = Device
        fields = ("serial", "model", "place", "patient", "is_active")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        place, patient = data.get("place"), data.get("patient")
        if place is not None:
            existing = self.instance if self.instance.pk else None
            try:
                services.device_assignment_check(device=existing, place=place, patient=patient)
            except ApplicationError as exc:
                self.add_error("patient", exc.message)
        return data


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    form = DeviceAdminForm
    list_display = ("serial", "model", "place", "patient", "is_active", "last_seen_at")
    list_filter = ("is_active", "place", "model")
    search_fields = ("serial", "model", "patient__name", "patient__mrn")
    list_select_related = ("place", "patient")
    raw_id_fields = ("patient",)
    readonly_fields = ("last_seen_at", "created_at")
    # The token hash is never shown or edited: tokens are issued by the services below.
    actions = ("rotate_tokens", "toggle_active")

    def save_model(self, request: HttpRequest, obj: Device, form: Any, change: bool) -> None:
        if change:
            # The form already copied the new values onto obj; the service compares with the row.
            services.device_update(
                device=Device.objects.get(pk=obj.pk),
                serial=obj.serial,
                model=obj.model,
                place=obj.place,
                patient=obj.patient,
                is_active=obj.is_active,
            )
            return
        device, token = services.device_create(
            serial=obj.serial,
            model=obj.model,
            place=obj.place,
            patient=obj.patient,
            is_active=obj.is_active,
        )
        obj.pk = device.pk
        messages.warning(
            request, f"Token of {device.serial} (shown only now, store it on the device): {token}"
        )

    @admin.action(description="Issue new tokens (old ones stop working)")
    def rotate_tokens(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset:
            token = services.device_rotate_token(device=device)
            messages.warning(request, f"New token of {device.serial} (shown only now): {token}")

    @admin.action(description="Toggle active / inactive")
    def toggle_active(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset:
            services.device_toggle_active(device=device)


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    """Readings are clinical records: visible here, never edited or deleted by hand."""

    list_display = ("recorded_at", "patient", "metric", "bpm", "device", "seq", "received_at")
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
