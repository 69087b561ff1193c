"""REST: alerts (list, detail, acknowledge, resolve) and per-patient alarm limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import django_filters
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from accounts.permissions import ClinicianWrites, IsPerson, request_person
from alerts import selectors, services
from alerts.models import Alert
from alerts.selectors import patient_limits
from alerts.serializers import (
    AlertActionSerializer,
    AlertDetailSerializer,
    AlertSerializer,
    CtgAlarmLimitsSerializer,
    PatientAlarmLimitsSerializer,
)
from audit.models import Action
from clinical.models import Patient
from clinical.selectors import patient_visible_get
from common.api import ERROR_RESPONSES, ErrorSerializer
from common.filters import IdFilter, IsoDateTimeFilter

SETTINGS_TAGS = ["alarm limits"]
_View = TypeVar("_View", bound=type[APIView])
CONFLICT = {409: OpenApiResponse(ErrorSerializer, description="Conflict with the alert's state")}


class AlertFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=Alert.State.choices)
    priority = django_filters.MultipleChoiceFilter(choices=Alert.Priority.choices)
    kind = django_filters.CharFilter()
    patient = IdFilter(field_name="patient_id")
    ward = IdFilter(field_name="patient__ward_id")
    place = IdFilter(field_name="patient__place_id")
    device = IdFilter(field_name="device_id")
    raised_after = IsoDateTimeFilter(field_name="raised_at", lookup_expr="gte")
    raised_before = IsoDateTimeFilter(field_name="raised_at", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ("state", "priority", "kind", "patient", "ward", "place", "device")


class AlertOrdering(OrderingFilter):
    """``?ordering=priority`` orders by severity (low < medium < high), not alphabetically."""

    def get_ordering(
        self, request: Request, queryset: QuerySet, view: APIView
    ) -> Sequence[str] | None:
        ordering = super().get_ordering(request, queryset, view)
        if not ordering:
            return ordering
        return [
            term.replace("priority", "priority_rank") if term.lstrip("-") == "priority" else term
            for term in ordering
        ]

    def remove_invalid_fields(
        self, queryset: QuerySet, fields: Iterable[str], view: APIView, request: Request
    ) -> list[str]:
        return [
            term
            for term in fields
            if term.lstrip("-") in {"raised_at", "updated_at", "id", "priority", "state", "kind"}
        ]


def _visible_alerts(request: Request) -> QuerySet[Alert]:
    return selectors.alerts_visible(user=request_person(request))


@extend_schema_view(
    get=extend_schema(
        tags=["alerts"],
        summary="Alerts of the places you may see",
        description=(
            "Filter by `state`, `priority` (both repeatable), `kind`, `patient`, `ward`, "
            "`place`, `device`, `raised_after`/`raised_before` (ISO-8601); order with "
            "`?ordering=` (`raised_at`, `updated_at`, `priority`, `state`, `kind`, `id`; `-` "
            "for descending); search patient name, MRN or kind with `?search=`."
        ),
        responses={200: AlertSerializer(many=True), **ERROR_RESPONSES},
    )
)
class AlertListView(generics.ListAPIView[Alert]):
    permission_classes = [IsPerson]
    audit_resource, audit_action = "alert", Action.SEARCH
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    filter_backends = [
        DjangoFilterBackend,
        SearchFilter,
        AlertOrdering,
    ]
    search_fields = ("patient__name", "patient__mrn", "kind")
    ordering_fields = ("raised_at", "updated_at", "id", "priority", "state", "kind")
    ordering = ("-raised_at", "-id")

    def get_queryset(self) -> QuerySet[Alert]:
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return _visible_alerts(self.request).select_related("acknowledged_by")


@extend_schema_view(
    get=extend_schema(
        tags=["alerts"],
        summary="One alert with its audit trail",
        responses={200: AlertDetailSerializer, **ERROR_RESPONSES},
    )
)
class AlertDetailView(generics.RetrieveAPIView[Alert]):
    permission_classes = [IsPerson]
    audit_resource = "alert"
    serializer_class = AlertDetailSerializer

    def get_queryset(self) -> QuerySet[Alert]:
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return _visible_alerts(self.request).prefetch_related("events")


class _AlertActionView(APIView):
    permission_classes = [IsPerson]
    audit_resource, audit_action = "alert", Action.UPDATE

    def perform(self, request: Request, alert_id: int, note: str) -> Alert:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        serializer = AlertActionSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        alert = self.perform(request, pk, serializer.validated_data.get("note", ""))
        alert = selectors.alert_get_visible(user=request_person(request), alert_id=alert.id)
        return Response(AlertSerializer(alert).data)


@extend_schema_view(
    post=extend_schema(
        tags=["alerts"],
        summary="Acknowledge an alert",
        description=(
            "Takes responsibility for the alert: it stays open until its condition ends (or "
            "someone resolves it) but stops escalating. Acknowledging an acknowledged alert "
            "changes nothing; a resolved alert answers 409 `conflict`."
        ),
        request=AlertActionSerializer,
        responses={200: AlertSerializer, **ERROR_RESPONSES, **CONFLICT},
    )
)
class AlertAcknowledgeView(_AlertActionView):
    audit_operation = "acknowledge"

    def perform(self, request: Request, alert_id: int, note: str) -> Alert:
        return services.alert_acknowledge(alert_id=alert_id, user=request_person(request))


@extend_schema_view(
    post=extend_schema(
        tags=["alerts"],
        summary="Resolve an alert by hand",
        description="Resolving a resolved alert answers 409 `conflict`.",
        request=AlertActionSerializer,
        responses={200: AlertSerializer, **ERROR_RESPONSES, **CONFLICT},
    )
)
class AlertResolveView(_AlertActionView):
    audit_operation = "resolve"

    def perform(self, request: Request, alert_id: int, note: str) -> Alert:
        return services.alert_resolve(alert_id=alert_id, user=request_person(request), note=note)


def _settings_schema(
    serializer: type[Serializer], *, read: str, reset: str
) -> Callable[[_View], _View]:
    """The documentation of a settings view's read (GET) and reset (DELETE)."""
    return extend_schema_view(
        get=extend_schema(
            tags=SETTINGS_TAGS, summary=read, responses={200: serializer, **ERROR_RESPONSES}
        ),
        delete=extend_schema(
            tags=SETTINGS_TAGS, summary=reset, responses={204: None, **ERROR_RESPONSES}
        ),
    )


class _PatientSettingsView(APIView):
    """One kind of a patient's alarm settings: read (GET), set (PUT, in the subclass) and back
    to the defaults (DELETE). Subclasses render them and reset them."""

    permission_classes = [ClinicianWrites]
    audit_patient_kwarg = "pk"

    def _patient(self, request: Request, pk: int) -> Patient:
        return patient_visible_get(user=request_person(request), patient_id=pk)

    def _render(self, patient: Patient) -> Response:
        raise NotImplementedError

    def _reset(self, patient: Patient) -> None:
        raise NotImplementedError

    def get(self, request: Request, pk: int) -> Response:
        return self._render(self._patient(request, pk))

    def delete(self, request: Request, pk: int) -> Response:
        self._reset(self._patient(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


@_settings_schema(
    PatientAlarmLimitsSerializer,
    read="A patient's alarm limits",
    reset="Back to the profile's default limits",
)
class PatientAlarmLimitsView(_PatientSettingsView):
    """A patient's effective alarm limits: the profile's defaults or the patient's own."""

    audit_resource = "alarm_limits"

    def _reset(self, patient: Patient) -> None:
        services.alarm_limits_reset(patient=patient)

    def _render(self, patient: Patient) -> Response:
        return Response(
            {
                "patient": patient.id,
                "monitoring_profile": patient.monitoring_profile,
                "limits": [limits.as_dict() for limits in patient_limits(patient=patient)],
            }
        )

    @extend_schema(
        tags=["alarm limits"],
        summary="Set a patient's own alarm limits",
        description=(
            "For each metric given, fields left out keep their current value and `null` "
            "switches a band off. Thresholds must rise from `brady_high` to `tachy_high` and lie "
            "within the metric's valid range; hold times are 0-3600 s. Other metrics keep theirs."
        ),
        request=PatientAlarmLimitsSerializer,
        responses={200: PatientAlarmLimitsSerializer, **ERROR_RESPONSES},
    )
    def put(self, request: Request, pk: int) -> Response:
        patient = self._patient(request, pk)
        serializer = PatientAlarmLimitsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        current = {limits.metric: limits for limits in patient_limits(patient=patient)}
        merged = []
        for item in serializer.validated_data["limits"]:
            base = current.get(item["metric"])
            values = base.as_dict() if base is not None else {}
            values.update(item)
            merged.append(values)
        services.alarm_limits_set(patient=patient, limits=merged, user=request_person(request))
        return self._render(self._patient(request, pk))


@_settings_schema(
    CtgAlarmLimitsSerializer,
    read="A patient's CTG alarm settings",
    reset="Back to the default CTG alarm settings",
)
class PatientCtgAlarmLimitsView(_PatientSettingsView):
    """A patient's effective CTG alarm settings: the defaults or the patient's own."""

    audit_resource = "ctg_alarm_limits"

    def _reset(self, patient: Patient) -> None:
        services.ctg_alarm_limits_reset(patient=patient)

    def _render(self, patient: Patient) -> Response:
        limits = selectors.ctg_limits_for_patients([patient.id])[patient.id]
        return Response({"patient": patient.id, **limits.as_dict()})

    @extend_schema(
        tags=["alarm limits"],
        summary="Set a patient's own CTG alarm settings (obstetric patients)",
        request=CtgAlarmLimitsSerializer,
        responses={200: CtgAlarmLimitsSerializer, **ERROR_RESPONSES},
    )
    def put(self, request: Request, pk: int) -> Response:
        patient = self._patient(request, pk)
        serializer = CtgAlarmLimitsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        current = selectors.ctg_limits_for_patients([patient.id])[patient.id].as_dict()
        current.update(serializer.validated_data)
        services.ctg_alarm_limits_set(patient=patient, values=current, user=request_person(request))
        return self._render(patient)
