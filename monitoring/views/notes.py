"""REST views of strip notes: a clinician's note at a moment of the trace, its corrections and
addenda: parse, authorize, call a service, render."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from accounts.permissions import IsPerson, request_person
from audit.models import Action
from clinical.models import Patient
from clinical.selectors import patient_visible_get
from common.api import TIME_SPAN_PARAMETERS, error_responses
from common.errors import NotFound
from common.parsers import JSONParser
from monitoring import notes
from monitoring.models import StripNote
from monitoring.serializers.ctg import CtgQuerySerializer
from monitoring.serializers.notes import (
    NoteAddendumInSerializer,
    NoteEditSerializer,
    NoteInSerializer,
    NoteSerializer,
)
from monitoring.views.patient_lists import PatientRowsView

# --- Strip notes ------------------------------------------------------------------------------


class NoteCursorPagination(CursorPagination):
    """Notes by the moment of the trace, newest first; cursor pages as for readings."""

    ordering = ("-at", "-id")
    page_size = 200
    page_size_query_param = "page_size"
    max_page_size = 1000


class NotesQuerySerializer(CtgQuerySerializer):
    """``from`` (inclusive) and ``to`` (exclusive) on the notes' ``at``."""


@extend_schema_view(
    get=extend_schema(
        summary="A patient's strip notes",
        description=(
            "Notes at moments of the patient's trace, newest first (by `at`), each with its "
            "addenda; `from` (inclusive) and `to` (exclusive) bound `at`. Cursor-paginated."
        ),
        parameters=[
            *TIME_SPAN_PARAMETERS,
            OpenApiParameter("cursor", OpenApiTypes.STR, description="Page cursor."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="At most 1000."),
        ],
        responses={200: NoteSerializer(many=True), **error_responses(400, 401, 404)},
    ),
    post=extend_schema(
        summary="Write a note at a moment of the patient's trace",
        description=(
            "Any person who may see the patient. `at` may not be in the future. Dashboards "
            "watching the patient get a `note` frame. The author may correct the note for "
            "`NOTE_EDIT_MINUTES` (PATCH); afterwards it is only annotated (addenda)."
        ),
        request=NoteInSerializer,
        responses={201: NoteSerializer, **error_responses(400, 401, 404)},
    ),
)
class PatientNotesView(PatientRowsView[StripNote]):
    audit_resource, audit_patient_kwarg = "note", "pk"
    audit_actions = {"GET": Action.SEARCH}
    permission_classes = [IsPerson]
    parser_classes = [JSONParser]
    serializer_class = NoteSerializer
    pagination_class = NoteCursorPagination
    queryset = StripNote.objects.none()  # for the schema; requests use get_queryset

    def patient_rows(self, patient: Patient) -> QuerySet[StripNote]:
        query = NotesQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return notes.notes_of_patient(
            patient_id=patient.id,
            start=query.validated_data.get("from"),
            end=query.validated_data.get("to"),
        )

    def post(self, request: Request, pk: int) -> Response:
        user = request_person(request)
        patient = patient_visible_get(user=user, patient_id=pk)
        body = NoteInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = notes.note_add(
            patient=patient,
            author=user,
            at=body.validated_data["at"],
            text=body.validated_data["text"],
        )
        return Response(notes.note_payload(note, addenda=[]), status=status.HTTP_201_CREATED)


def _patient_note(request: Request, pk: int, note_id: int) -> tuple[Patient, StripNote]:
    patient = patient_visible_get(user=request_person(request), patient_id=pk)
    note = notes.note_of_patient(patient_id=patient.id, note_id=note_id)
    if note is None:
        raise NotFound("No such note.")
    return patient, note


def _note_change(
    request: Request, pk: int, note_id: int, body: type[Serializer]
) -> tuple[Patient, StripNote, dict[str, Any]]:
    """The note a change is about and the change's checked body."""
    patient, note = _patient_note(request, pk, note_id)
    data = body(data=request.data)
    data.is_valid(raise_exception=True)
    return patient, note, data.validated_data


def _note_changed(request: Request, pk: int, note_id: int, *, status: int) -> Response:
    """The note as it is after a change, with all its addenda."""
    _, note = _patient_note(request, pk, note_id)
    return Response(notes.note_payload(note), status=status)


class PatientNoteView(APIView):
    audit_resource, audit_patient_kwarg, audit_id_kwarg = "note", "pk", "note_id"
    permission_classes = [IsPerson]
    parser_classes = [JSONParser]

    @extend_schema(
        summary="A strip note with its addenda",
        responses={200: NoteSerializer, **error_responses(401, 404)},
    )
    def get(self, request: Request, pk: int, note_id: int) -> Response:
        _, note = _patient_note(request, pk, note_id)
        return Response(notes.note_payload(note))

    @extend_schema(
        summary="Correct a strip note (its author, within NOTE_EDIT_MINUTES)",
        description=(
            "Only the author (403 `note_not_author`), only within `NOTE_EDIT_MINUTES` of "
            "writing it and before anyone annotated it (409 `note_locked`): afterwards the "
            "note is part of the record and is annotated instead (POST .../addenda/)."
        ),
        request=NoteEditSerializer,
        responses={200: NoteSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def patch(self, request: Request, pk: int, note_id: int) -> Response:
        patient, note, data = _note_change(request, pk, note_id, NoteEditSerializer)
        notes.note_edit(
            patient=patient,
            note=note,
            user=request_person(request),
            text=data.get("text"),
            at=data.get("at"),
        )
        return _note_changed(request, pk, note_id, status=status.HTTP_200_OK)


class PatientNoteAddendaView(APIView):
    audit_resource, audit_patient_kwarg, audit_id_kwarg = "note", "pk", "note_id"
    audit_action, audit_operation = Action.UPDATE, "addendum"
    permission_classes = [IsPerson]
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Annotate a strip note",
        description=(
            "An addendum by any person who may see the patient; the note keeps its text. "
            "Answers the note with all its addenda."
        ),
        request=NoteAddendumInSerializer,
        responses={201: NoteSerializer, **error_responses(400, 401, 404)},
    )
    def post(self, request: Request, pk: int, note_id: int) -> Response:
        patient, note, data = _note_change(request, pk, note_id, NoteAddendumInSerializer)
        notes.note_annotate(
            patient=patient, note=note, author=request_person(request), text=data["text"]
        )
        return _note_changed(request, pk, note_id, status=status.HTTP_201_CREATED)
