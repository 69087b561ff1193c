"""Reading the audit trail back: the list for administrators and the export.

Both are audited themselves (the middleware records a ``search`` of ``audit`` and an
``export``): who read the trail is part of the trail.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from audit.models import Action, AuditRecord, Outcome
from audit.selectors import audit_record_payload, audit_records
from audit.serializers import AuditRecordSerializer
from common.api import ERROR_RESPONSES
from common.datetimes import parse_aware_datetime
from common.errors import ValidationFailed
from common.filters import INT64_MAX


class IsAdministrator(BasePermission):
    """A signed-in administrator (the person model's ``is_admin``)."""

    message = "Only administrators may read the audit trail."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user.is_authenticated and getattr(user, "is_admin", False))


class AuditCursorPagination(CursorPagination):
    ordering = ("-at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


FILTERS = [
    OpenApiParameter("patient", OpenApiTypes.INT, description="Records about this patient."),
    OpenApiParameter("actor", OpenApiTypes.INT, description="Records of this user id."),
    OpenApiParameter(
        "actor_type",
        OpenApiTypes.STR,
        enum=["user", "device", "hl7", "system"],
        description="With `actor`: whose id it is (default `user`).",
    ),
    OpenApiParameter("action", OpenApiTypes.STR, enum=Action.values),
    OpenApiParameter("outcome", OpenApiTypes.STR, enum=Outcome.values),
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="At or after (ISO-8601)."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="Before (ISO-8601)."),
]


def _id(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    if not str(raw).isdigit() or not 1 <= int(raw) <= INT64_MAX:
        raise ValidationFailed(
            "The request is not valid.", details={name: ["A positive integer id is required."]}
        )
    return int(raw)


def _choice(query: Any, name: str, choices: list[str]) -> str | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    if raw not in choices:
        raise ValidationFailed(
            "The request is not valid.", details={name: [f"One of: {', '.join(choices)}."]}
        )
    return str(raw)


def filtered_records(request: Request) -> QuerySet[AuditRecord]:
    query = request.query_params
    times: dict[str, Any] = {}
    for name in ("from", "to"):
        raw = query.get(name)
        if raw:
            try:
                times[name] = parse_aware_datetime(raw)
            except ValueError as exc:
                raise ValidationFailed(
                    "The request is not valid.", details={name: [str(exc)]}
                ) from None
    return audit_records(
        patient=_id(query, "patient"),
        actor=_id(query, "actor"),
        actor_type=_choice(query, "actor_type", ["user", "device", "hl7", "system"]),
        action=_choice(query, "action", list(Action.values)),
        outcome=_choice(query, "outcome", list(Outcome.values)),
        since=times.get("from"),
        until=times.get("to"),
    )


@extend_schema(
    tags=["audit"],
    summary="The access audit trail (administrators)",
    description=(
        "One record per access to patient data and per change, newest first, "
        "cursor-paginated (`next`/`previous`, no count). Others than administrators: 403."
    ),
    parameters=FILTERS,
    responses={
        200: AuditRecordSerializer(many=True),
        **{code: ERROR_RESPONSES[code] for code in (400, 401, 403)},
    },
)
class AuditListView(ListAPIView[AuditRecord]):
    permission_classes = (IsAdministrator,)
    serializer_class = AuditRecordSerializer
    pagination_class = AuditCursorPagination
    filter_backends = ()
    audit_resource, audit_action = "audit", Action.SEARCH

    def get_queryset(self) -> QuerySet[AuditRecord]:
        if getattr(self, "swagger_fake_view", False):
            return AuditRecord.objects.none()
        return filtered_records(self.request)


CSV_COLUMNS = (
    "id",
    "at",
    "actor_type",
    "actor_id",
    "actor_role",
    "actor_label",
    "address",
    "user_agent",
    "channel",
    "action",
    "resource_type",
    "resource_id",
    "patient",
    "patients",
    "outcome",
    "request_id",
    "query",
    "detail",
)


def _csv_row(payload: dict[str, Any]) -> list[Any]:
    actor, resource = payload["actor"], payload["resource"]
    return [
        payload["id"],
        payload["at"],
        actor["type"],
        actor["id"],
        actor["role"],
        actor["label"],
        payload["address"],
        payload["user_agent"],
        payload["channel"],
        payload["action"],
        resource["type"],
        resource["id"],
        payload["patient"],
        " ".join(map(str, payload["patients"])),
        payload["outcome"],
        payload["request_id"],
        json.dumps(payload["query"]) if payload["query"] else "",
        json.dumps(payload["detail"]) if payload["detail"] else "",
    ]


def _csv_lines(records: QuerySet[AuditRecord]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for record in records.iterator(chunk_size=2000):
        writer.writerow(_csv_row(audit_record_payload(record)))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _ndjson_lines(records: QuerySet[AuditRecord]) -> Iterator[str]:
    for record in records.iterator(chunk_size=2000):
        yield json.dumps(audit_record_payload(record)) + "\n"


class AuditExportView(APIView):
    """The trail as a file for the privacy officer: every record the filters select (no
    pages), as CSV or NDJSON. The export is itself recorded (action ``export``)."""

    permission_classes = (IsAdministrator,)
    audit_resource = "audit"
    audit_action = Action.EXPORT

    @extend_schema(
        tags=["audit"],
        summary="Export the audit trail as CSV or NDJSON (administrators)",
        parameters=[
            *FILTERS,
            OpenApiParameter(
                "file_format",
                OpenApiTypes.STR,
                enum=["csv", "ndjson"],
                description="`csv` (default) or `ndjson` (one record per line, as in the list).",
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="NDJSON"),
            **{code: ERROR_RESPONSES[code] for code in (400, 401, 403)},
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        kind = _choice(request.query_params, "file_format", ["csv", "ndjson"]) or "csv"
        records = filtered_records(request)
        if kind == "ndjson":
            response = StreamingHttpResponse(
                _ndjson_lines(records), content_type="application/x-ndjson"
            )
        else:
            response = StreamingHttpResponse(_csv_lines(records), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="audit.{kind}"'
        return response
