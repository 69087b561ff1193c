"""REST views of readings and the CTG analysis: parse, authorize, call a service, render."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.filters import OrderingFilter
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import JWTAuthentication
from accounts.permissions import IsPerson, request_person
from audit.models import Action
from clinical.models import Device
from clinical.selectors import patient_visible_get
from common.api import ERROR_RESPONSES, ErrorSerializer
from common.errors import NotFound, ValidationFailed
from common.parsers import JSONParser
from monitoring import ctg_record, notes, selectors, services
from monitoring.authentication import DeviceTokenAuthentication, IsDevice
from monitoring.filters import ReadingHistoryFilter
from monitoring.models import Reading, StripNote
from monitoring.serializers import (
    AggregateQuerySerializer,
    AggregateSerializer,
    CtgQuerySerializer,
    CtgSerializer,
    NoteAddendumInSerializer,
    NoteEditSerializer,
    NoteInSerializer,
    NoteSerializer,
    ReadingSerializer,
    ReadingsRequest,
    RecordsResultSerializer,
    ctg_payload,
)

CONFLICT = OpenApiResponse(ErrorSerializer, description="Conflict with the current state")
MAX_BUCKETS = 5000
DEFAULT_AGGREGATE_RANGE = timedelta(hours=1)
MAX_CTG_RANGE = timedelta(hours=2)


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    table = {**ERROR_RESPONSES, status.HTTP_409_CONFLICT: CONFLICT}
    return {code: table[code] for code in codes}


# --- Devices ----------------------------------------------------------------------------------


# --- Records ----------------------------------------------------------------------------------


class RecordsView(APIView):
    """POST readings: from a device (``Authorization: Device``) or by hand (Bearer JWT).

    The only endpoint a device token opens.
    """

    authentication_classes = [JWTAuthentication, DeviceTokenAuthentication]
    permission_classes = [IsDevice | IsPerson]
    audit_resource = "reading"
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Post one reading or a list of them (device or clinician)",
        description=(
            "From a device: the readings go to the device's patient and `seq` is required; "
            "`(device, seq)` makes a retry safe (already stored seqs come back in "
            "`duplicates`). From a clinician: each reading names a `patient` the caller can "
            "see and `seq` may be omitted.\n\n"
            "A single object is all-or-nothing (400 with field details). A list is accepted "
            "partially, like the device WebSocket: valid items are stored, invalid ones are "
            "reported in `rejected` with their index and error; if no item is valid the answer "
            "is 400 with details keyed by index. At most 5000 items per request.\n\n"
            "Errors: 403 `device_inactive` (deactivated device), 409 `device_unassigned` "
            "(device without a patient), 404 (single manual reading for an unknown patient)."
        ),
        request=ReadingsRequest,
        responses={201: RecordsResultSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        # Rendered before the commit: an answer that cannot be rendered leaves nothing stored
        # (a client told 4xx/5xx must be able to rely on nothing having been kept).
        with transaction.atomic():
            if isinstance(request.auth, Device):
                result = services.readings_record_from_device(
                    device=request.auth, payload=request.data
                )
            else:
                result = services.readings_record_manual(
                    user=request_person(request), payload=request.data
                )
            body = RecordsResultSerializer(result).data
        return Response(body, status=status.HTTP_201_CREATED)


class ReadingCursorPagination(CursorPagination):
    """Time series: cursor pages (stable while readings keep arriving), no count."""

    ordering = ("-recorded_at", "-id")
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000


class ReadingPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ReadingSerializer(many=True)


@extend_schema(
    summary="A patient's heart-rate history",
    description=(
        "Raw readings, newest first, cursor-paginated (`next`/`previous`, no count), filtered "
        "by `from` (inclusive), `to` (exclusive) and `metric`.\n\n"
        "With `bucket=<seconds>` the answer is aggregated instead: per bucket and metric "
        "`{bucket_start, metric, min, max, mean, count}`, oldest first, buckets aligned to the "
        "epoch; `from` defaults to one hour before `to` (default now) and at most 5000 buckets "
        "fit in the range."
    ),
    parameters=[
        OpenApiParameter(
            "bucket",
            OpenApiTypes.INT,
            description="Aggregate into buckets of this many seconds (1-86400).",
        ),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="Page cursor from next/previous."),
        OpenApiParameter(
            "page_size", OpenApiTypes.INT, description="Readings per page (max 5000)."
        ),
    ],
    responses={
        200: PolymorphicProxySerializer(
            component_name="ReadingHistory",
            serializers=[ReadingPageSerializer, AggregateSerializer],
            resource_type_field_name=None,
            # The body is one page or one aggregate: not a list for the paginator to wrap.
            many=False,
        ),
        **_errors(400, 401, 404),
    },
)
class RecordHistoryView(ListAPIView[Reading]):
    audit_resource, audit_action = "reading", Action.SEARCH
    serializer_class = ReadingSerializer
    permission_classes = [IsPerson]
    pagination_class = ReadingCursorPagination
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = ReadingHistoryFilter
    ordering_fields = ("recorded_at",)
    ordering = ("-recorded_at", "-id")
    queryset = Reading.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self) -> QuerySet[Reading]:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        patient = patient_visible_get(
            user=request_person(self.request), patient_id=self.kwargs["patient_id"]
        )
        return selectors.readings_history(patient_id=patient.id)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if "bucket" in request.query_params:
            return self._aggregate(request)
        return super().list(request, *args, **kwargs)

    def _aggregate(self, request: Request) -> Response:
        patient = patient_visible_get(
            user=request_person(request), patient_id=self.kwargs["patient_id"]
        )
        query = AggregateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        bucket: int = query.validated_data["bucket"]
        end = query.validated_data.get("to") or timezone.now()
        start = query.validated_data.get("from") or end - DEFAULT_AGGREGATE_RANGE
        if start >= end:
            raise ValidationFailed(
                "The range is empty.", details={"from": ["Must be before `to`."]}
            )
        buckets = math.ceil((end - start).total_seconds() / bucket)
        if buckets > MAX_BUCKETS:
            raise ValidationFailed(
                f"The range holds {buckets} buckets; at most {MAX_BUCKETS} are allowed.",
                details={"bucket": [f"Use a wider bucket or a shorter range (max {MAX_BUCKETS})."]},
            )
        results = selectors.readings_aggregate(
            patient_id=patient.id,
            start=start,
            end=end,
            bucket_seconds=bucket,
            metric=query.validated_data.get("metric"),
        )
        # Plain dicts (AggregateSerializer documents them): up to 10,000 rows through DRF
        # fields would cost more than the query. The JSON encoder writes datetimes as ISO-8601.
        return Response({"bucket": bucket, "from": start, "to": end, "results": results})


# --- CTG --------------------------------------------------------------------------------------


@extend_schema(
    summary="A patient's CTG analysis (FIGO 2015)",
    description=(
        "Baseline, variability, accelerations, decelerations (early / late / variable against "
        "the contractions), contractions and their frequency, signal loss and the FIGO "
        "classification with its reasons, computed from the stored fetal heart rate and "
        "uterine activity of [`from`, `to`), as the alarm evaluator reads it (the same "
        "analysis, window and look-back).\n\n"
        "`to` defaults to now and `from` to the evaluator's window before `to` (30 minutes): "
        "without `from` the answer is the reading the ward tile and the CTG alarms give for "
        "that moment. Both are taken to whole seconds (down). The window may be at most 2 hours "
        "long and `from` must be before `to` (400 otherwise).\n\n"
        "Only monitored time is analysed: the window's part since the current monitoring "
        "session began (its first fetal heart rate or uterine activity reading after a gap of "
        "more than 10 minutes; `monitored_since`, `monitored_seconds`). Less than 10 minutes "
        'of it is `insufficient_signal` with `needs_minutes` set and the reason "too short to '
        'classify yet". docs/ctg.md says how each number is read.'
    ),
    parameters=[
        OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start (inclusive)."),
        OpenApiParameter("to", OpenApiTypes.DATETIME, description="End (exclusive)."),
    ],
    responses={200: CtgSerializer, **_errors(400, 401, 404)},
)
class PatientCtgView(APIView):
    audit_resource, audit_patient_kwarg = "ctg", "pk"
    permission_classes = [IsPerson]

    def get(self, request: Request, pk: int) -> Response:
        patient = patient_visible_get(user=request_person(request), patient_id=pk)
        query = CtgQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        # Whole seconds, as the evaluator's windows: the analysis is on a one-second grid.
        end = (query.validated_data.get("to") or timezone.now()).replace(microsecond=0)
        start = query.validated_data.get("from")
        if start is not None:
            start = start.replace(microsecond=0)
            if start >= end:
                raise ValidationFailed(
                    "The window is empty.", details={"from": ["Must be before `to`."]}
                )
            if end - start > MAX_CTG_RANGE:
                raise ValidationFailed(
                    "The window is longer than 2 hours.",
                    details={"to": ["At most 2 hours after `from`."]},
                )
        reading = selectors.patient_ctg(patient_id=patient.id, start=start, end=end)
        return Response(ctg_payload(patient_id=patient.id, reading=reading))


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
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start (inclusive)."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="End (exclusive)."),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="Page cursor."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="At most 1000."),
        ],
        responses={200: NoteSerializer(many=True), **_errors(400, 401, 404)},
    ),
    post=extend_schema(
        summary="Write a note at a moment of the patient's trace",
        description=(
            "Any person who may see the patient. `at` may not be in the future. Dashboards "
            "watching the patient get a `note` frame. The author may correct the note for "
            "`NOTE_EDIT_MINUTES` (PATCH); afterwards it is only annotated (addenda)."
        ),
        request=NoteInSerializer,
        responses={201: NoteSerializer, **_errors(400, 401, 404)},
    ),
)
class PatientNotesView(ListAPIView[StripNote]):
    audit_resource, audit_patient_kwarg = "note", "pk"
    audit_actions = {"GET": Action.SEARCH}
    permission_classes = [IsPerson]
    parser_classes = [JSONParser]
    serializer_class = NoteSerializer
    pagination_class = NoteCursorPagination
    queryset = StripNote.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self) -> QuerySet[StripNote]:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        patient = patient_visible_get(
            user=request_person(self.request), patient_id=self.kwargs["pk"]
        )
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
        with transaction.atomic():
            note = notes.note_add(
                patient=patient,
                author=user,
                at=body.validated_data["at"],
                text=body.validated_data["text"],
            )
        return Response(notes.note_payload(note, addenda=[]), status=status.HTTP_201_CREATED)


def _patient_note(request: Request, pk: int, note_id: int) -> tuple[Any, StripNote]:
    patient = patient_visible_get(user=request_person(request), patient_id=pk)
    note = notes.note_of_patient(patient_id=patient.id, note_id=note_id)
    if note is None:
        raise NotFound("No such note.")
    return patient, note


class PatientNoteView(APIView):
    audit_resource, audit_patient_kwarg, audit_id_kwarg = "note", "pk", "note_id"
    permission_classes = [IsPerson]
    parser_classes = [JSONParser]

    @extend_schema(
        summary="A strip note with its addenda",
        responses={200: NoteSerializer, **_errors(401, 404)},
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
        responses={200: NoteSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def patch(self, request: Request, pk: int, note_id: int) -> Response:
        patient, note = _patient_note(request, pk, note_id)
        body = NoteEditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            notes.note_edit(
                patient=patient,
                note=note,
                user=request_person(request),
                text=body.validated_data.get("text"),
                at=body.validated_data.get("at"),
            )
        _, note = _patient_note(request, pk, note_id)
        return Response(notes.note_payload(note))


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
        responses={201: NoteSerializer, **_errors(400, 401, 404)},
    )
    def post(self, request: Request, pk: int, note_id: int) -> Response:
        patient, note = _patient_note(request, pk, note_id)
        body = NoteAddendumInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            notes.note_annotate(
                patient=patient,
                note=note,
                author=request_person(request),
                text=body.validated_data["text"],
            )
        _, note = _patient_note(request, pk, note_id)
        return Response(notes.note_payload(note), status=status.HTTP_201_CREATED)


# --- The CTG record (PDF) ---------------------------------------------------------------------


class CtgRecordQuerySerializer(CtgQuerySerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            **super().get_fields(),
            "speed": serializers.ChoiceField(choices=ctg_record.SPEEDS, required=False, default=1),
        }


class JsonErrorsNegotiation(DefaultContentNegotiation):
    """The PDF is a plain response; errors are JSON whatever the client accepts (a browser
    asking for ``application/pdf`` still gets the contract's error shape, not a 406)."""

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return (renderers[0], renderers[0].media_type)


@extend_schema(
    summary="A patient's CTG record as PDF (A4 landscape, for the chart)",
    description=(
        "The fetal heart rate on its 50-210 bpm grid with the 110-160 band, the maternal "
        "heart rate, uterine activity (0-100) below, at `speed` 1 or 3 cm/min (27 or 9 "
        "minutes a page); time marks, the patient, place, monitor and the page's time span on "
        "every page; strip notes, the CTG analysis's events and the FIGO classification of "
        "each 30-minute window along the trace; seconds without signal are gaps.\n\n"
        "`to` defaults to now; `from` to 24 hours before `to`, moved to the first reading in "
        "that range. At most 24 hours, `from` before `to` (400 otherwise). docs/ctg.md "
        "describes the record."
    ),
    parameters=[
        OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start (inclusive)."),
        OpenApiParameter("to", OpenApiTypes.DATETIME, description="End (exclusive)."),
        OpenApiParameter("speed", OpenApiTypes.INT, enum=[1, 3], description="cm/min (1)."),
    ],
    responses={
        (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
        **_errors(400, 401, 404),
    },
)
class PatientCtgRecordView(APIView):
    audit_resource, audit_patient_kwarg, audit_action = "ctg_record", "pk", Action.EXPORT
    permission_classes = [IsPerson]
    content_negotiation_class = JsonErrorsNegotiation

    def get(self, request: Request, pk: int) -> HttpResponse:
        user = request_person(request)
        patient = patient_visible_get(user=user, patient_id=pk)
        query = CtgRecordQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        end = query.validated_data.get("to") or timezone.now()
        start = query.validated_data.get("from")
        if start is None:
            start = end - ctg_record.MAX_RECORD
            first = selectors.readings_history(patient_id=patient.id, start=start, end=end).last()
            if first is not None:
                start = first.recorded_at.replace(microsecond=0)
        if start >= end:
            raise ValidationFailed(
                "The record is empty.", details={"from": ["Must be before `to`."]}
            )
        if end - start > ctg_record.MAX_RECORD:
            raise ValidationFailed(
                "The record is longer than 24 hours.",
                details={"to": ["At most 24 hours after `from`."]},
            )
        data = ctg_record.ctg_record_data(
            patient=patient, start=start, end=end, printed_by=user.get_full_name()
        )
        pdf = ctg_record.ctg_record_render(data=data, speed=int(query.validated_data["speed"]))
        response = HttpResponse(pdf, content_type="application/pdf")
        name = f"ctg-{patient.mrn}-{start:%Y%m%dT%H%M}.pdf".replace('"', "")
        response["Content-Disposition"] = f'inline; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
