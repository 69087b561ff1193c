from __future__ import annotations

from django.urls import path

from monitoring.views import PatientCtgView, RecordHistoryView, RecordsView

urlpatterns = [
    path("records/", RecordsView.as_view(), name="records"),
    path("records/<int:patient_id>/", RecordHistoryView.as_view(), name="record-history"),
    path("patients/<int:pk>/ctg/", PatientCtgView.as_view(), name="patient-ctg"),
]
