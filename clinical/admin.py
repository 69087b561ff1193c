"""Django admin of places, wards, patients, devices, and the places of each person.

Forms apply the same rules as the REST API (``clinical.services.patient_validate``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.forms import UserChangeForm
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from accounts.admin import UserAddForm, UserAdmin
from accounts.models import User
from accounts.services import user_sessions_end
from clinical import services
from clinical.models import Device, Patient, Place, Ward
from clinical.selectors import patient_device_id
from clinical.services import PATIENT_FIELDS, patient_validate, place_validate
from common.errors import ApplicationError, ValidationFailed

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _PlaceCounts(TypedDict):
    ward_count: int
    admitted_count: int


class _WardCounts(TypedDict):
    admitted_count: int


class PlaceAdminForm(forms.ModelForm):
    # The secret is never shown again; a blank field keeps the stored one.
    webhook_secret = forms.CharField(
        required=False,
        max_length=128,
        widget=forms.PasswordInput(render_value=False),
        help_text="HMAC-SHA256 key. Leave blank to keep the current one.",
    )
    clear_webhook_secret = forms.BooleanField(required=False, label="Remove the webhook secret")
    # A webhook typed without a scheme is taken as https, never plain http.
    webhook_url = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = Place
        fields: tuple[str, ...] = ("name", "kind", "address", "is_active", "webhook_url")
        fields += (
            "webhook_secret",
            "mfa_required_for_doctors",
        )  # a place may require a second factor

    def clean_webhook_url(self) -> str:
        url: str = self.cleaned_data["webhook_url"]
        try:
            place_validate(place=Place(webhook_url=url))
        except ValidationFailed as exc:
            raise forms.ValidationError((exc.details or {}).get("webhook_url", [])) from exc
        return url

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("clear_webhook_secret"):
            cleaned["webhook_secret"] = ""
        elif not cleaned.get("webhook_secret"):
            cleaned["webhook_secret"] = self.instance.webhook_secret
        return cleaned


class WardInline(admin.TabularInline[Ward, Place]):
    model = Ward
    extra = 0
    fields = ("name",)
    show_change_link = True


@admin.register(Place)
class PlaceAdmin(admin.ModelAdmin[Place]):
    form = PlaceAdminForm
    list_display = ("name", "kind", "is_active", "ward_count", "admitted_count", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "address")
    readonly_fields = ("created_at",)
    inlines = (WardInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Place]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                ward_count=Count("wards", distinct=True),
                admitted_count=Count(
                    "patients",
                    filter=Q(patients__discharged_at__isnull=True),
                    distinct=True,
                ),
            )
        )

    def save_model(
        self, request: HttpRequest, obj: Place, form: forms.ModelForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        switched_on = "mfa_required_for_doctors" in form.changed_data and (
            obj.mfa_required_for_doctors
        )
        if change and switched_on:  # as through REST: the password sessions end
            services.place_mfa_sessions_end(place=obj)

    @admin.display(description="wards", ordering="ward_count")
    def ward_count(self, place: WithAnnotations[Place, _PlaceCounts]) -> int:
        return place.ward_count

    @admin.display(description="admitted patients", ordering="admitted_count")
    def admitted_count(self, place: WithAnnotations[Place, _PlaceCounts]) -> int:
        return place.admitted_count


@admin.register(Ward)
class WardAdmin(admin.ModelAdmin[Ward]):
    list_display = ("name", "place", "admitted_count")
    list_filter = ("place",)
    list_select_related = ("place",)
    search_fields = ("name", "place__name")
    autocomplete_fields = ("place",)

    def get_readonly_fields(self, request: HttpRequest, obj: Ward | None = None) -> tuple:
        # Its patients and devices belong to the place: a ward does not move between places.
        return ("place",) if obj is not None else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ward]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                admitted_count=Count("patients", filter=Q(patients__discharged_at__isnull=True))
            )
        )

    @admin.display(description="admitted patients", ordering="admitted_count")
    def admitted_count(self, ward: WithAnnotations[Ward, _WardCounts]) -> int:
        return ward.admitted_count


class AdmissionFilter(admin.SimpleListFilter):
    title = "admission"
    parameter_name = "admission"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("active", "Admitted"), ("discharged", "Discharged")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Patient]) -> QuerySet[Patient]:
        if self.value() == "active":
            return queryset.filter(discharged_at__isnull=True)
        if self.value() == "discharged":
            return queryset.filter(discharged_at__isnull=False)
        return queryset


class PatientAdminForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = PATIENT_FIELDS

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        probe = Patient(pk=self.instance.pk, **{name: cleaned.get(name) for name in PATIENT_FIELDS})
        moving = self.instance.pk is not None and probe.place_id != self.instance.place_id
        try:
            patient_validate(patient=probe, moving_place=moving, admitting=self.instance.pk is None)
        except ValidationFailed as exc:
            for field, messages in (exc.details or {}).items():
                self.add_error(field if field in self.fields else None, messages)
        return cleaned


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin[Patient]):
    form = PatientAdminForm
    list_display = (
        "name",
        "mrn",
        "place",
        "ward",
        "bed",
        "monitoring_profile",
        "sex",
        "admitted_at",
        "discharged_at",
        "device_serial",
    )
    list_display_links = ("name", "mrn")
    list_filter = (AdmissionFilter, "monitoring_profile", "sex", "place", "ward")
    list_select_related = ("place", "ward__place", "device")
    search_fields = ("name", "mrn", "bed", "device__serial")
    autocomplete_fields = ("place", "ward")
    date_hierarchy = "admitted_at"
    readonly_fields = ("device_serial",)
    fieldsets = (
        (None, {"fields": ("name", "mrn", "date_of_birth", "sex", "monitoring_profile")}),
        ("Location", {"fields": ("place", "ward", "bed", "device_serial")}),
        ("Admission", {"fields": ("admitted_at", "discharged_at")}),
    )

    def save_model(
        self, request: HttpRequest, obj: Patient, form: forms.ModelForm, change: bool
    ) -> None:
        # Through the services, as REST and the ADT feed: a discharge frees the monitor, and
        # open dashboards see the admission, move, update or discharge at once.
        data = {name: getattr(obj, name) for name in PATIENT_FIELDS}
        if change:
            services.patient_update(patient=Patient.objects.get(pk=obj.pk), data=data)
            return
        created = services.patient_create(**data)
        obj.pk = created.pk
        obj._state.adding = False

    @admin.display(description="device")
    def device_serial(self, patient: Patient) -> str:
        if patient_device_id(patient) is None:
            return "-"
        return patient.device.serial


class DeviceAdminForm(forms.ModelForm):
    class Meta:
        model = Device
        fields = ("serial", "model", "place", "patient", "is_active")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        place, patient = data.get("place"), data.get("patient")
        if place is not None:
            existing = self.instance if self.instance.pk else None
            try:
                services.device_assignment_check(device=existing, place=place, patient=patient)
            except ApplicationError as exc:
                self.add_error("patient", exc.message)
        return data


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin[Device]):
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
            self.log_change(request, device, "Issued a new token.")  # history and audit
            messages.warning(request, f"New token of {device.serial} (shown only now): {token}")

    @admin.action(description="Toggle active / inactive")
    def toggle_active(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset:
            services.device_toggle_active(device=device)
            state = "active" if device.is_active else "inactive"
            self.log_change(request, device, f"Made {state}.")


# --- The places of a person: added to the accounts admin, since places live here -------------


def _places_field() -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        Place.objects.all(), required=False, widget=FilteredSelectMultiple("places", False)
    )


class MemberUserAddForm(UserAddForm):
    places = _places_field()


class MemberUserChangeForm(UserChangeForm[User]):  # the form of accounts' UserAdmin
    places = _places_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["places"].initial = list(self.instance.places.all())


def _with_places(fieldsets: Any, after: str) -> tuple[Any, ...]:
    """The fieldsets with ``places`` placed after the field ``after``."""
    result = []
    for name, options in fieldsets:
        fields = list(options["fields"])
        if after in fields:
            fields.insert(fields.index(after) + 1, "places")
        result.append((name, {**options, "fields": tuple(fields)}))
    return tuple(result)


admin.site.unregister(User)


@admin.register(User)
class MemberUserAdmin(UserAdmin):
    add_form = MemberUserAddForm
    form = MemberUserChangeForm
    add_fieldsets = _with_places(UserAdmin.add_fieldsets, after="role")
    fieldsets = _with_places(UserAdmin.fieldsets, after="role")
    list_filter = (*UserAdmin.list_filter, "places")
    audit_detail_fields = ("role", "places", "is_active")  # as REST records them

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not change:
            return
        before = {place.pk for place in form.fields["places"].initial or ()}
        if "places" in form.cleaned_data:
            form.instance.places.set(form.cleaned_data["places"])
        after = set(form.instance.places.values_list("pk", flat=True))
        deactivated = "is_active" in form.changed_data and not form.instance.is_active
        if "role" in form.changed_data or deactivated or before - after:
            # As through REST (accounts.services.user_update): access changed under them, so
            # every session ends and they sign in again with what they now have.
            user_sessions_end(user=form.instance)
