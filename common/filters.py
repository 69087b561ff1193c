"""Query filters shared by the REST lists: date-times the database can hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from common.datetimes import datetime_problem


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
