"""Query filters of the place, ward and patient lists.

Foreign keys are filtered by plain ids: the lists are already limited to what the caller may
see, so an invisible place or ward gives an empty list, exactly like a nonexistent one."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from clinical.models import Device, Patient, Place, Ward
from common.filters import IdFilter, IsoDateTimeFilter


class StrictBooleanField(forms.Field):
    """``true``/``false`` (or ``1``/``0``); anything else is a 400, not an ignored filter."""

    widget = forms.TextInput
    _VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value: object) -> bool | None:
        if value in (None, ""):
            return None
        try:
            return self._VALUES[str(value).lower()]
        except KeyError:
            raise forms.ValidationError("Enter true or false.", code="invalid") from None


@extend_schema_field(OpenApiTypes.BOOL)
class BooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class PlaceFilter(django_filters.FilterSet):
    is_active = BooleanFilter()

    class Meta:
        model = Place
        fields = ("kind", "is_active")


class WardFilter(django_filters.FilterSet):
    place = IdFilter(field_name="place_id", help_text="Place id.")

    class Meta:
        model = Ward
        fields = ("place",)


class PatientFilter(django_filters.FilterSet):
    place = IdFilter(field_name="place_id", help_text="Place id.")
    ward = IdFilter(field_name="ward_id", help_text="Ward id.")
    active = BooleanFilter(
        method="filter_active",
        help_text="true: still admitted (not discharged); false: discharged.",
    )
    admitted_after = IsoDateTimeFilter(field_name="admitted_at", lookup_expr="gte")
    admitted_before = IsoDateTimeFilter(field_name="admitted_at", lookup_expr="lt")
    discharged_after = IsoDateTimeFilter(field_name="discharged_at", lookup_expr="gte")
    discharged_before = IsoDateTimeFilter(field_name="discharged_at", lookup_expr="lt")

    class Meta:
        model = Patient
        fields = ("place", "ward", "monitoring_profile", "sex", "active")

    def filter_active(self, queryset: QuerySet[Patient], name: str, value: bool) -> QuerySet:
        return queryset.filter(discharged_at__isnull=value)


class DeviceFilter(django_filters.FilterSet):
    assigned = django_filters.BooleanFilter(
        field_name="patient", lookup_expr="isnull", exclude=True, label="Assigned to a patient"
    )

    class Meta:
        model = Device
        fields = ("place", "patient", "is_active", "model")
