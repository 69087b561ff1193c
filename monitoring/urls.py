from __future__ import annotations

from django.urls import path

from monitoring.views import (
    PatientCtgRecordView,
    PatientCtgView,
    PatientNoteAddendaView,
    PatientNotesView,
    PatientNoteView,
    RecordHistoryView,
    RecordsView,
)

urlpatterns = [
    path("records/", RecordsView.as_view(), name="records"),
    path("records/<int:patient_id>/", RecordHistoryView.as_view(), name="record-history"),
    path("patients/<int:pk>/ctg/", PatientCtgView.as_view(), name="patient-ctg"),
    path("patients/<int:pk>/ctg.pdf", PatientCtgRecordView.as_view(), name="patient-ctg-record"),
    path("patients/<int:pk>/notes/", PatientNotesView.as_view(), name="patient-notes"),
    path("patients/<int:pk>/notes/<int:note_id>/", PatientNoteView.as_view(), name="patient-note"),
    path(
        "patients/<int:pk>/notes/<int:note_id>/addenda/",
        PatientNoteAddendaView.as_view(),
        name="patient-note-addenda",
    ),
]
