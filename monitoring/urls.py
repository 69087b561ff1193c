from __future__ import annotations

from django.urls import path

from monitoring.views import RecordHistoryView, RecordsView

urlpatterns = [
    path("records/", RecordsView.as_view(), name="records"),
    path("records/<int:patient_id>/", RecordHistoryView.as_view(), name="record-history"),
]
