"""The shape of a list of one patient's rows (readings, notes) for a person who may see the
patient: the patient comes from the URL and is checked once, here."""

from __future__ import annotations

from typing import TypeVar

from django.db import models
from django.db.models import QuerySet
from rest_framework.generics import ListAPIView

from accounts.permissions import request_person
from clinical.models import Patient
from clinical.selectors import patient_visible_get

_Row = TypeVar("_Row", bound=models.Model)


class PatientRowsView(ListAPIView[_Row]):
    """Lists rows of the patient named by the URL's ``patient_kwarg``; a patient the person may
    not see is a 404. Subclasses say which rows (``patient_rows``)."""

    patient_kwarg = "pk"

    def get_queryset(self) -> QuerySet[_Row]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular's anonymous request
            return super().get_queryset()
        patient = patient_visible_get(
            user=request_person(self.request), patient_id=self.kwargs[self.patient_kwarg]
        )
        return self.patient_rows(patient)

    def patient_rows(self, patient: Patient) -> QuerySet[_Row]:
        raise NotImplementedError
