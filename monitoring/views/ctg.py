"""REST view of a patient's CTG analysis: parse, authorize, call a service, render."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsPerson, request_person
from clinical.selectors import patient_visible_get
from common.api import error_responses
from common.errors import ValidationFailed
from monitoring import selectors
from monitoring.serializers import (
    CtgQuerySerializer,
    CtgSerializer,
    ctg_payload,
)

MAX_CTG_RANGE = timedelta(hours=2)


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
