"""Query filters shared by the REST lists: ids and date-times the database can hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from common.datetimes import datetime_problem
from common.ids import INT64_MAX


class StorableIsoDateTimeField(IsoDateTimeField):
    """django-filter's ISO-8601 field, refusing (400) what the database cannot compare with:
    an offset beyond ±15:59 or a date-time outside years 1-9999 in UTC."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is not None and parsed.utcoffset() is not None:
            problem = datetime_problem(parsed)
            if problem is not None:
                raise forms.ValidationError(problem, code="invalid")
        return parsed


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = StorableIsoDateTimeField


class IdField(forms.IntegerField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(**kwargs)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": INT64_MAX})
class IdFilter(django_filters.Filter):
    """An integer id: ``1.5``, ``x``, ``0`` or one beyond 64 bits is a 400 (not a silent
    rounding, nor a 500 from a database that cannot hold the number)."""

    field_class = IdField
