"""REST endpoints of places, wards and patients: parse, authorize, call a service, render.

Visibility: administrators see everything; doctors and nurses see only the objects of the
places they belong to. Anything else answers 404, as if it did not exist, and ids of places or
wards they cannot see are rejected as nonexistent (400 on that field).

Who writes: places and wards are the hospital's structure and only administrators create or
change them; patients are admitted and updated by administrators, doctors and nurses within
their places. There is no DELETE: patients are discharged, places deactivated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts.permissions import AdminWrites, ClinicianWrites, DoctorWrites, request_person
from audit.models import Action
from clinical import services
from clinical.filters import DeviceFilter, PatientFilter, PlaceFilter, WardFilter
from clinical.models import Device, Patient, Place, Ward
from clinical.selectors import devices_visible, patients_visible, places_visible, wards_visible
from clinical.serializers import (
    DeviceInputSerializer,
    DeviceSerializer,
    DeviceWithTokenSerializer,
    PatientDischargeSerializer,
    PatientSerializer,
    PlaceSerializer,
    WardSerializer,
)
from common.api import ERROR_RESPONSES, ErrorSerializer

_M = TypeVar("_M", bound=Model)

CONFLICT = OpenApiResponse(ErrorSerializer, description="Conflicts with an existing record")


def _errors(*codes: int) -> dict[int, Any]:
    responses: dict[int, Any] = {**ERROR_RESPONSES, 409: CONFLICT}
    return {code: responses[code] for code in codes}


def _crud_schema(
    serializer: type, noun: str, plural: str, *, writers: str, conflict: bool, rules: str = ""
) -> dict[str, Any]:
    write = f"Allowed to {writers}. {rules}".strip()
    write_errors = (400, 401, 403, 404, 409) if conflict else (400, 401, 403, 404)
    create_errors = tuple(code for code in write_errors if code != 404)
    return {
        "list": extend_schema(
            summary=f"List {plural}",
            description=(
                f"The {plural} visible to the caller, paginated: administrators see all, "
                "doctors and nurses those of the places they belong to."
            ),
            responses={200: serializer, **_errors(400, 401)},
        ),
        "create": extend_schema(
            summary=f"Create a {noun}",
            description=write,
            responses={201: serializer, **_errors(*create_errors)},
        ),
        "retrieve": extend_schema(
            summary=f"Get a {noun}",
            description="404 when it does not exist or is not visible to the caller.",
            responses={200: serializer, **_errors(401, 404)},
        ),
        "update": extend_schema(
            summary=f"Replace a {noun}",
            description=write,
            responses={200: serializer, **_errors(*write_errors)},
        ),
        "partial_update": extend_schema(
            summary=f"Change a {noun}",
            description=write,
            responses={200: serializer, **_errors(*write_errors)},
        ),
    }


class _ClinicalViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[_M],
):
    """List, create, read and update; DELETE answers 405 (nothing is deleted over REST).

    Each subclass names its entity's "visible to this user" selector and its create and update
    services; the view only parses, authorizes, calls them and renders."""

    visible: Callable[..., QuerySet[_M]]
    create_service: Callable[..., _M]
    update_service: Callable[..., _M]

    def get_queryset(self) -> QuerySet[_M]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular's anonymous request
            return super().get_queryset().none()
        return self.visible(user=request_person(self.request))

    def perform_create(self, serializer: BaseSerializer[_M]) -> None:
        serializer.instance = self.create_service(**serializer.validated_data)

    def perform_update(self, serializer: BaseSerializer[_M]) -> None:
        instance = serializer.instance
        assert instance is not None  # UpdateModelMixin serializes the object it fetched
        # The update services name the instance after its model: place_update(place=..., data=...).
        name = str(instance._meta.model_name)
        serializer.instance = self.update_service(
            **{name: instance}, data=serializer.validated_data
        )


class _StructureViewSet(_ClinicalViewSet[_M]):
    """The hospital's structure (places, wards): only administrators write."""

    audit_reads = False  # no patient data; changes are recorded
    permission_classes = (AdminWrites,)


@extend_schema_view(
    **_crud_schema(
        PlaceSerializer,
        "place",
        "places",
        writers="administrators",
        conflict=False,
        rules=(
            "`webhook_secret` is write-only (`has_webhook_secret` tells whether one is set); "
            "`webhook_url` and `has_webhook_secret` are shown to administrators only."
        ),
    )
)
class PlaceViewSet(_StructureViewSet[Place]):
    """Hospitals and clinics."""

    queryset = Place.objects.all()
    serializer_class = PlaceSerializer
    filterset_class = PlaceFilter
    search_fields = ("name", "address")
    ordering_fields = ("id", "name", "kind", "is_active", "created_at")
    ordering = ("name", "id")
    visible = staticmethod(places_visible)
    create_service = staticmethod(services.place_create)
    update_service = staticmethod(services.place_update)


@extend_schema_view(
    **_crud_schema(
        WardSerializer,
        "ward",
        "wards",
        writers="administrators",
        conflict=True,
        rules=(
            "A ward name already used in the place is a 409 `conflict` with `details.name`. "
            "A ward does not move to another place (400)."
        ),
    )
)
class WardViewSet(_StructureViewSet[Ward]):
    """Wards of a place."""

    queryset = Ward.objects.all()
    serializer_class = WardSerializer
    filterset_class = WardFilter
    search_fields = ("name", "place__name")
    ordering_fields = ("id", "name", "place")
    ordering = ("place", "name", "id")
    visible = staticmethod(wards_visible)
    create_service = staticmethod(services.ward_create)
    update_service = staticmethod(services.ward_update)


@extend_schema_view(
    **_crud_schema(
        PatientSerializer,
        "patient",
        "patients",
        writers="administrators, doctors and nurses, within their places",
        conflict=True,
        rules=(
            "A `place` or `ward` the caller cannot see is rejected as nonexistent (400 on that "
            "field). The ward must belong to the patient's place, and an inactive place "
            "admits no one (400). `date_of_birth` may not be in the future, `discharged_at` "
            "must follow `admitted_at` (400). An `mrn` already used in the place is a 409 "
            "`conflict` with `details.mrn`. A patient with a device keeps its place. Setting "
            "`discharged_at` frees the patient's device; `null` readmits."
        ),
    ),
    discharge=extend_schema(
        summary="Discharge a patient",
        description=(
            "Sets `discharged_at` (now when omitted) and frees the patient's device for the "
            "next admission. 409 if already discharged."
        ),
        request=PatientDischargeSerializer,
        responses={200: PatientSerializer, **_errors(400, 401, 403, 404, 409)},
    ),
)
class PatientViewSet(_ClinicalViewSet[Patient]):
    """Patients. `?active=true` lists those still admitted."""

    queryset = Patient.objects.all()
    serializer_class = PatientSerializer
    permission_classes = (ClinicianWrites,)
    filterset_class = PatientFilter
    search_fields = ("name", "mrn", "bed")
    ordering_fields = (
        "id",
        "name",
        "mrn",
        "bed",
        "date_of_birth",
        "admitted_at",
        "discharged_at",
        "place",
        "ward",
    )
    ordering = ("place", "ward", "bed", "id")
    visible = staticmethod(patients_visible)
    create_service = staticmethod(services.patient_create)
    update_service = staticmethod(services.patient_update)

    @action(detail=True, methods=["post"])
    def discharge(self, request: Request, pk: str | None = None) -> Response:
        patient = self.get_object()
        body = PatientDischargeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        patient = services.patient_discharge(patient=patient, **body.validated_data)
        context = self.get_serializer_context()
        return Response(PatientSerializer(patient, context=context).data, status=status.HTTP_200_OK)


# --- Devices ----------------------------------------------------------------------------------

DEVICE_CONFLICT = OpenApiResponse(ErrorSerializer, description="Conflict with the current state")


def _device_errors(*codes: int) -> dict[int, OpenApiResponse]:
    table = {**ERROR_RESPONSES, status.HTTP_409_CONFLICT: DEVICE_CONFLICT}
    return {code: table[code] for code in codes}


@extend_schema_view(
    list=extend_schema(
        summary="Devices of the caller's places", responses=_device_errors(400, 401)
    ),
    retrieve=extend_schema(
        summary="One device", responses={200: DeviceSerializer, **_device_errors(401, 404)}
    ),
    create=extend_schema(
        summary="Register a device (admins, doctors); the response carries its token once",
        request=DeviceInputSerializer,
        responses={201: DeviceWithTokenSerializer, **_device_errors(400, 401, 403, 409)},
    ),
    update=extend_schema(
        summary="Replace a device's fields (admins, doctors)",
        request=DeviceInputSerializer,
        responses={200: DeviceSerializer, **_device_errors(400, 401, 403, 404, 409)},
    ),
    partial_update=extend_schema(
        summary='Change some of a device\'s fields, e.g. assign it: {"patient": id | null}',
        request=DeviceInputSerializer,
        responses={200: DeviceSerializer, **_device_errors(400, 401, 403, 404, 409)},
    ),
)
class DeviceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Device],
):
    """Bedside monitors. Everyone reads the devices of their places; admins and doctors
    write. Devices of other places answer 404."""

    audit_actions = {"rotate_token": Action.TOKEN_ROTATED}

    serializer_class = DeviceSerializer
    permission_classes = [DoctorWrites]
    filterset_class = DeviceFilter
    search_fields = ("serial", "model")
    ordering_fields = ("serial", "model", "last_seen_at", "id")
    ordering = ("serial",)
    queryset = Device.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self) -> QuerySet[Device]:
        return devices_visible(user=request_person(self.request))

    def _input(self, data: Any, *, partial: bool = False) -> dict[str, Any]:
        user = request_person(self.request)
        serializer = DeviceInputSerializer(
            data=data,
            partial=partial,
            places=places_visible(user=user),
            patients=patients_visible(user=user),
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def create(self, request: Request) -> Response:
        device, token = services.device_create(**self._input(request.data))
        # The plain token rides on the instance for DeviceWithTokenSerializer, which shows it
        # this once; it is no model field (only its hash is stored).
        device.token = token  # type: ignore[attr-defined]  # see above
        return Response(DeviceWithTokenSerializer(device).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str | None = None) -> Response:
        device = self.get_object()
        data = self._input(request.data)
        data.setdefault("patient", None)  # PUT replaces: an omitted patient unassigns.
        device = services.device_update(device=device, **data)
        return Response(DeviceSerializer(device).data)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        device = self.get_object()
        device = services.device_update(device=device, **self._input(request.data, partial=True))
        return Response(DeviceSerializer(device).data)

    @extend_schema(
        summary="Issue a new token; the old one stops working at once",
        request=None,
        responses={200: DeviceWithTokenSerializer, **_device_errors(401, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request: Request, pk: str | None = None) -> Response:
        device = self.get_object()
        # As in ``create``: the new plain token rides on the instance, shown this once.
        device.token = services.device_rotate_token(device=device)  # type: ignore[attr-defined]  # as in create
        return Response(DeviceWithTokenSerializer(device).data)

    @extend_schema(
        summary="Toggle active/inactive; returns the device with its new state",
        request=None,
        responses={200: DeviceSerializer, **_device_errors(401, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path="change-status")
    def change_status(self, request: Request, pk: str | None = None) -> Response:
        device = services.device_toggle_active(device=self.get_object())
        return Response(DeviceSerializer(device).data)
