"""The REST views of monitoring, one module per job: records and history, the CTG
analysis and record, strip notes."""

from monitoring.views.ctg import PatientCtgRecordView, PatientCtgView
from monitoring.views.notes import (
    PatientNoteAddendaView,
    PatientNotesView,
    PatientNoteView,
)
from monitoring.views.records import RecordHistoryView, RecordsView

__all__ = [
    "PatientCtgRecordView",
    "PatientCtgView",
    "PatientNoteAddendaView",
    "PatientNoteView",
    "PatientNotesView",
    "RecordHistoryView",
    "RecordsView",
]
