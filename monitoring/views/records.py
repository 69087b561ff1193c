"""REST views of readings: a device's or a clinician's records, and a patient's history: parse,
authorize, call a service, render."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import JWTAuthentication
from accounts.permissions import IsPerson, request_person
from audit.models import Action
from clinical.models import Device, Patient
from clinical.selectors import patient_visible_get
from common.api import error_responses
from common.errors import ValidationFailed
from common.parsers import JSONParser
from monitoring import selectors, services
from monitoring.authentication import DeviceTokenAuthentication, IsDevice
from monitoring.filters import ReadingHistoryFilter
from monitoring.models import Reading
from monitoring.serializers.records import (
    AggregateQuerySerializer,
    AggregateSerializer,
    ReadingSerializer,
    ReadingsRequest,
    RecordsResultSerializer,
)
from monitoring.views.patient_lists import PatientRowsView

MAX_BUCKETS = 5000
DEFAULT_AGGREGATE_RANGE = timedelta(hours=1)


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
        responses={201: RecordsResultSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        # Rendered before the commit: an answer that cannot be rendered leaves nothing stored
        # (a client told 4xx/5xx must be able to rely on nothing having been kept). Inside the
        # audit middleware's transaction (the request's change and its record commit together)
        # this joins it rather than adding a savepoint: a failure here undoes the whole request.
        with transaction.atomic(savepoint=False):
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
        **error_responses(400, 401, 404),
    },
)
class RecordHistoryView(PatientRowsView[Reading]):
    audit_resource, audit_action = "reading", Action.SEARCH
    serializer_class = ReadingSerializer
    permission_classes = [IsPerson]
    pagination_class = ReadingCursorPagination
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = ReadingHistoryFilter
    ordering_fields = ("recorded_at",)
    ordering = ("-recorded_at", "-id")
    queryset = Reading.objects.none()  # for the schema; requests use get_queryset
    patient_kwarg = "patient_id"

    def patient_rows(self, patient: Patient) -> QuerySet[Reading]:
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
