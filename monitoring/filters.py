"""Query filters of the reading history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from common.datetimes import parse_aware_datetime
from monitoring.models import Metric, Reading


class AwareDateTimeFormField(forms.Field):
    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            return parse_aware_datetime(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeFilter(django_filters.Filter):
    field_class = AwareDateTimeFormField


class ReadingHistoryFilter(django_filters.FilterSet):
    metric = django_filters.ChoiceFilter(choices=Metric.choices)

    class Meta:
        model = Reading
        fields: tuple[str, ...] = ()


# `from` and `to` are Python keywords, so they are added by name.
ReadingHistoryFilter.base_filters["from"] = AwareDateTimeFilter(
    field_name="recorded_at", lookup_expr="gte", label="From (inclusive, ISO-8601 with offset)"
)
ReadingHistoryFilter.base_filters["to"] = AwareDateTimeFilter(
    field_name="recorded_at", lookup_expr="lt", label="To (exclusive, ISO-8601 with offset)"
)
