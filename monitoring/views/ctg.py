"""REST views of a patient's CTG: the analysis, and the record as PDF: parse, authorize, call a
service, render."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsPerson, request_person
from audit.models import Action
from clinical.selectors import patient_visible_get
from common.api import error_responses
from common.errors import ValidationFailed
from monitoring import selectors
from monitoring.ctg_record.data import MAX_RECORD, ctg_record_data
from monitoring.ctg_record.paper import SPEEDS
from monitoring.ctg_record.render import ctg_record_render
from monitoring.serializers.ctg import (
    CtgQuerySerializer,
    CtgSerializer,
    ctg_payload,
)

MAX_CTG_RANGE = timedelta(hours=2)


def _span_check(start: datetime, end: datetime, *, noun: str, longest: timedelta) -> None:
    """400 unless ``start`` comes before ``end`` and at most ``longest`` (whole hours) before."""
    if start >= end:
        raise ValidationFailed(f"The {noun} is empty.", details={"from": ["Must be before `to`."]})
    if end - start > longest:
        hours = f"{longest // timedelta(hours=1)} hours"
        raise ValidationFailed(
            f"The {noun} is longer than {hours}.",
            details={"to": [f"At most {hours} after `from`."]},
        )


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
    responses={200: CtgSerializer, **error_responses(400, 401, 404)},
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
            _span_check(start, end, noun="window", longest=MAX_CTG_RANGE)
        reading = selectors.patient_ctg(patient_id=patient.id, start=start, end=end)
        return Response(ctg_payload(patient_id=patient.id, reading=reading))


# --- The CTG record (PDF) ---------------------------------------------------------------------


class CtgRecordQuerySerializer(CtgQuerySerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            **super().get_fields(),
            "speed": serializers.ChoiceField(choices=SPEEDS, required=False, default=1),
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
        **error_responses(400, 401, 404),
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
            start = end - MAX_RECORD
            first = selectors.readings_history(patient_id=patient.id, start=start, end=end).last()
            if first is not None:
                start = first.recorded_at.replace(microsecond=0)
        _span_check(start, end, noun="record", longest=MAX_RECORD)
        data = ctg_record_data(
            patient=patient, start=start, end=end, printed_by=user.get_full_name()
        )
        pdf = ctg_record_render(data=data, speed=int(query.validated_data["speed"]))
        response = HttpResponse(pdf, content_type="application/pdf")
        name = f"ctg-{patient.mrn}-{start:%Y%m%dT%H%M}.pdf".replace('"', "")
        response["Content-Disposition"] = f'inline; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
