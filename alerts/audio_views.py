"""REST: a ward's central-station alarm audio (paused for a limited time, or off for admins)
and its audit trail. See alerts/audio.py and docs/dashboard.md."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsPerson, request_person
from alerts import audio
from alerts.models import AlarmAudioPause
from audit.models import Action
from common.api import ERROR_RESPONSES, ErrorSerializer

TAGS = ["alarm audio"]


class AudioPauseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=AlarmAudioPause.Mode.choices)
    by = serializers.DictField(help_text="`{id, name}` of who paused it.")
    started_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True, help_text="Null for audio off.")
    remaining_seconds = serializers.IntegerField(allow_null=True)


class AudioStateSerializer(serializers.Serializer):
    ward = serializers.IntegerField()
    # A plain string in the schema: an enum named "state" would collide with the alert's.
    state = serializers.CharField(help_text="`sounding`, `paused` or `off`.")
    pause_seconds = serializers.IntegerField(help_text="How long a pause lasts in this place.")
    pause = AudioPauseSerializer(allow_null=True)


class AudioPauseRequestSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=AlarmAudioPause.Mode.choices,
        default=AlarmAudioPause.Mode.PAUSED,
        help_text="`paused` (anyone of the place, for the place's pause time) or `off` "
        "(admins only, until resumed).",
    )


class AudioHistorySerializer(serializers.ModelSerializer):
    by = serializers.SerializerMethodField()
    ended_by = serializers.SerializerMethodField()

    class Meta:
        model = AlarmAudioPause
        fields = (
            "id",
            "ward",
            "mode",
            "by",
            "started_at",
            "ends_at",
            "ended_at",
            "ended_by",
            "end_reason",
        )

    def get_by(self, obj: AlarmAudioPause) -> int:
        return obj.by_id

    def get_ended_by(self, obj: AlarmAudioPause) -> int | None:
        return obj.ended_by_id


ERRORS = {code: ERROR_RESPONSES[code] for code in (401, 403, 404)}


class _WardAudioView(APIView):
    """A ward's alarm audio: any person who may see the ward; its changes are recorded."""

    permission_classes = (IsPerson,)
    audit_resource, audit_action = "alarm_audio", Action.UPDATE


class AlarmAudioView(_WardAudioView):
    audit_reads = False

    @extend_schema(
        tags=TAGS,
        summary="The ward's alarm audio: sounding, paused (with the time left) or off",
        responses={200: AudioStateSerializer, **ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        ward = audio.ward_audio_get(user=request_person(request), ward_id=pk)
        return Response(audio.alarm_audio_state(ward=ward))


class AlarmAudioPauseView(_WardAudioView):
    audit_operation = "pause"

    @extend_schema(
        tags=TAGS,
        summary="Pause the ward's alarm audio for the place's pause time (or, admins, off)",
        description=(
            "Recorded with who paused it. The sound returns when the pause ends, on resume, or "
            "when a new high-priority alarm is raised in the ward. `off` by a non-admin: 403 "
            "`audio_off_not_allowed`. Every dashboard on the ward gets an `audio` frame."
        ),
        request=AudioPauseRequestSerializer,
        responses={
            201: AudioStateSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Validation error"),
            **ERRORS,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        data = AudioPauseRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        state = audio.alarm_audio_pause(
            user=request_person(request), ward_id=pk, mode=data.validated_data["mode"]
        )
        return Response(state, status=status.HTTP_201_CREATED)


class AlarmAudioResumeView(_WardAudioView):
    audit_operation = "resume"

    @extend_schema(
        tags=TAGS,
        summary="End the ward's audio pause (or audio off) now",
        request=None,
        responses={200: AudioStateSerializer, **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        return Response(audio.alarm_audio_resume(user=request_person(request), ward_id=pk))


@extend_schema(tags=TAGS, summary="The ward's audio pauses, newest first (audit trail)")
class AlarmAudioHistoryView(generics.ListAPIView):
    permission_classes = (IsPerson,)
    serializer_class = AudioHistorySerializer
    filter_backends = ()

    def get_queryset(self) -> QuerySet[AlarmAudioPause]:
        return audio.alarm_audio_history(
            user=request_person(self.request), ward_id=int(self.kwargs["pk"])
        )
