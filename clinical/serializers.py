"""REST shapes of places, wards and patients. Input checks only; rules live in services."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinical.models import Device, Patient, Place, Ward
from clinical.selectors import patient_device_id, places_visible, wards_visible
from clinical.services import PATIENT_FIELDS, PLACE_FIELDS


def _request_user(field: serializers.Field) -> Any:
    request = field.context.get("request")
    return getattr(request, "user", None)


class VisiblePlaceField(serializers.PrimaryKeyRelatedField):
    """A place id the caller can see; any other id is reported as nonexistent (400)."""

    def get_queryset(self) -> QuerySet[Place]:
        user = _request_user(self)
        if user is None or not user.is_authenticated:
            return Place.objects.none()
        return places_visible(user=user)


class VisibleWardField(serializers.PrimaryKeyRelatedField):
    """A ward id the caller can see; any other id is reported as nonexistent (400)."""

    def get_queryset(self) -> QuerySet[Ward]:
        user = _request_user(self)
        if user is None or not user.is_authenticated:
            return Ward.objects.none()
        return wards_visible(user=user).select_related("place")


class PlaceSerializer(serializers.ModelSerializer):
    webhook_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=128,
        style={"input_type": "password"},
        help_text="HMAC-SHA256 key for signing webhook calls. Write-only.",
    )
    has_webhook_secret = serializers.SerializerMethodField()

    class Meta:
        model = Place
        fields = ("id", *PLACE_FIELDS, "has_webhook_secret", "created_at")
        read_only_fields = ("id", "created_at")
        extra_kwargs = {
            "webhook_url": {
                "help_text": "Alert events are POSTed here. Shown to administrators only.",
            },
            "alert_manager_host": {
                "help_text": "HL7 alert manager (PCD-04 over MLLP). Shown to administrators only.",
            },
            "alert_manager_port": {
                "help_text": "The HL7 alert manager's MLLP port. Shown to administrators only.",
                "min_value": 1,
                "max_value": 65535,
            },
        }

    @extend_schema_field(serializers.BooleanField())
    def get_has_webhook_secret(self, place: Place) -> bool:
        return bool(place.webhook_secret)

    def to_representation(self, instance: Place) -> dict[str, Any]:
        data = super().to_representation(instance)
        user = _request_user(self)
        if not (user is not None and user.is_authenticated and user.is_admin):
            # Webhook endpoints are configuration of administrators, not ward information.
            for name in PLACE_ADMIN_ONLY_FIELDS:
                data.pop(name, None)
        return data


PLACE_ADMIN_ONLY_FIELDS = (
    "webhook_url",
    "has_webhook_secret",
    "alert_manager_host",
    "alert_manager_port",
)


class PlaceSerializerSchema(OpenApiSerializerExtension):
    """The documented Place: the fields shown to administrators only are not required (a
    read-only field otherwise is), so a clinician's Place matches the schema too; and a blank
    ``webhook_url`` is "a URL or empty" (``anyOf``: drf-spectacular's ``oneOf`` refuses ``""``,
    which a validator that does not check the ``uri`` format finds in both branches)."""

    target_class = PlaceSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer(
            self.target, direction, bypass_extensions=True
        )
        url = schema.get("properties", {}).get("webhook_url", {})
        if "oneOf" in url:
            url["anyOf"] = url.pop("oneOf")
        required = [
            name for name in schema.get("required", []) if name not in PLACE_ADMIN_ONLY_FIELDS
        ]
        schema["required"] = required
        if not required:
            del schema["required"]
        return schema


class WardSerializer(serializers.ModelSerializer):
    place = VisiblePlaceField(queryset=Place.objects.all())

    class Meta:
        model = Ward
        fields = ("id", "place", "name")
        read_only_fields = ("id",)
        # Uniqueness of the name within a place is the service's job (409 conflict).
        validators: list = []


class PatientSerializer(serializers.ModelSerializer):
    place = VisiblePlaceField(queryset=Place.objects.all())
    ward = VisibleWardField(queryset=Ward.objects.all(), required=False, allow_null=True)
    device = serializers.SerializerMethodField(
        help_text="The id of the device assigned to the patient, if any."
    )

    class Meta:
        model = Patient
        fields = ("id", *PATIENT_FIELDS, "device")
        read_only_fields = ("id",)
        # Uniqueness of the MRN within a place is the service's job (409 conflict).
        validators: list = []

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_device(self, patient: Patient) -> int | None:
        return patient_device_id(patient)


class PatientDischargeSerializer(serializers.Serializer):
    discharged_at = serializers.DateTimeField(
        required=False, help_text="When the patient left; now when omitted."
    )


# --- Devices ----------------------------------------------------------------------------------


class DeviceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields: tuple[str, ...] = (
            "id",
            "serial",
            "model",
            "place",
            "patient",
            "is_active",
            "last_seen_at",
        )
        read_only_fields = fields


class DeviceWithTokenSerializer(DeviceSerializer):
    token = serializers.CharField(
        read_only=True,
        help_text="The device's secret for `Authorization: Device <token>`. "
        "Shown only in this response; only its hash is stored.",
    )

    class Meta(DeviceSerializer.Meta):
        fields = (*DeviceSerializer.Meta.fields, "token")
        read_only_fields = fields


class DeviceInputSerializer(serializers.Serializer):
    """Create (POST) and update (PUT/PATCH) input; querysets are narrowed to what the caller
    may see, so a place or patient of another place reads as non-existent."""

    serial = serializers.CharField(max_length=64)
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    place = serializers.PrimaryKeyRelatedField(queryset=Place.objects.none())
    patient = serializers.PrimaryKeyRelatedField(
        queryset=Patient.objects.none(), allow_null=True, required=False
    )
    is_active = serializers.BooleanField(required=False)

    def __init__(
        self,
        *args: Any,
        places: QuerySet[Place] | None = None,
        patients: QuerySet[Patient] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # The PrimaryKeyRelatedFields declared above (``fields`` holds them as plain Fields).
        # djangorestframework-stubs declare ``queryset`` as possibly a Manager, whose ``__get__``
        # mypy then applies to the field: the ignores below.
        place = cast("serializers.PrimaryKeyRelatedField[Place]", self.fields["place"])
        patient = cast("serializers.PrimaryKeyRelatedField[Patient]", self.fields["patient"])
        if places is not None:
            place.queryset = places  # type: ignore[arg-type]  # Manager.__get__, see above
        if patients is not None:
            patient.queryset = patients  # type: ignore[arg-type]  # Manager.__get__, see above

    def validate_serial(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value
