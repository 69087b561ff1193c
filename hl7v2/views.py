"""Enrolment of HL7 senders: ``/api/places/<id>/hl7-senders/`` (administrators only)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdminRole, request_person
from clinical.models import Place
from clinical.selectors import places_visible
from common.api import ERROR_RESPONSES
from hl7v2 import senders as services
from hl7v2.models import Hl7Sender
from hl7v2.serializers import Hl7SenderSerializer


def _place(request: Request, place_id: int) -> Place:
    return get_object_or_404(places_visible(user=request_person(request)), pk=place_id)


class Hl7SenderListView(APIView):
    """The gateways and patient administration systems that may send HL7 for a place."""

    permission_classes = (IsAdminRole,)
    audit_resource = "hl7_sender"
    audit_reads = False  # no patient data; changes are recorded

    @extend_schema(
        summary="HL7 senders enrolled for a place (administrators)",
        responses={
            200: Hl7SenderSerializer(many=True),
            **{c: ERROR_RESPONSES[c] for c in (401, 403, 404)},
        },
    )
    def get(self, request: Request, place_id: int) -> Response:
        place = _place(request, place_id)
        senders = services.senders_of_place(place_id=place.id)
        return Response(Hl7SenderSerializer(senders, many=True).data)

    @extend_schema(
        summary="Enrol an HL7 sender for a place (administrators)",
        request=Hl7SenderSerializer,
        responses={
            201: Hl7SenderSerializer,
            **{c: ERROR_RESPONSES[c] for c in (400, 401, 403, 404)},
        },
    )
    def post(self, request: Request, place_id: int) -> Response:
        place = _place(request, place_id)
        body = Hl7SenderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        sender = services.sender_create(place=place, **body.validated_data)
        return Response(Hl7SenderSerializer(sender).data, status=status.HTTP_201_CREATED)


class Hl7SenderDetailView(APIView):
    permission_classes = (IsAdminRole,)
    audit_resource = "hl7_sender"
    audit_id_kwarg = "sender_id"

    @extend_schema(
        summary="Remove an HL7 sender (administrators)",
        responses={204: None, **{c: ERROR_RESPONSES[c] for c in (401, 403, 404)}},
    )
    def delete(self, request: Request, place_id: int, sender_id: int) -> Response:
        place = _place(request, place_id)
        sender = get_object_or_404(Hl7Sender, pk=sender_id, place_id=place.id)
        services.sender_delete(sender=sender)
        return Response(status=status.HTTP_204_NO_CONTENT)
