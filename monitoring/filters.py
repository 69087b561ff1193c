"""Query filters of the reading history."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from monitoring.models import Metric, Reading

# An unencoded "+" in a query string arrives as a space: "...T10:00:00 05:30" means "+05:30".
_SPACED_OFFSET = re.compile(r"^(.+T\S+) (\d{2}(?::?\d{2})?)$")


def parse_aware_datetime(value: Any) -> datetime:
    """Parse ISO-8601 with a UTC offset (``Z`` allowed); naive values are refused."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("An ISO-8601 date-time with a UTC offset is required.")
    text = _SPACED_OFFSET.sub(r"\1+\2", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("Not an ISO-8601 date-time.") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("The date-time must carry a UTC offset, e.g. 2026-01-01T10:00:00Z.")
    return parsed


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
