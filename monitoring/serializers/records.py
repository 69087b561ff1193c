"""Request parsing and response rendering for readings and their history; no business rules
here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from common.api import ErrorSerializer
from common.datetimes import parse_aware_datetime
from common.ids import INT64_MAX
from monitoring.models import HEART_RATE_METRICS, Metric


class ReadingSerializer(serializers.Serializer):
    """A stored reading (a model row or an ingest result)."""

    id = serializers.IntegerField()
    patient = serializers.IntegerField(source="patient_id")
    device = serializers.IntegerField(source="device_id", allow_null=True)
    metric = serializers.ChoiceField(choices=Metric.choices)
    value = serializers.IntegerField(
        help_text="The reading's number: bpm for heart rates, relative toco units (0-100) for "
        "uterine activity.",
    )
    bpm = serializers.IntegerField(
        source="value",
        required=False,
        help_text="Heart-rate metrics only: the same number as `value`, under its old name.",
    )
    recorded_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    seq = serializers.IntegerField(allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if data["metric"] not in HEART_RATE_METRICS:
            del data["bpm"]
        return data


class ReadingInSerializer(serializers.Serializer):
    """Documents one reading of POST /api/records/.

    Validation itself is ``monitoring.readings.reading_parse``, the same code as the device
    WebSocket, so both paths accept and refuse exactly the same readings.
    """

    metric = serializers.ChoiceField(
        choices=Metric.choices,
        help_text="`fetal_heart_rate` and `uterine_activity` only for patients with the "
        "obstetric profile.",
    )
    value = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=300,
        help_text="The reading's number: heart_rate 20-300 bpm; fetal_heart_rate 50-240 bpm; "
        "uterine_activity 0-100 relative toco units. Send `value` or (heart rates) `bpm`.",
    )
    bpm = serializers.IntegerField(
        required=False,
        min_value=20,
        max_value=300,
        help_text="Heart-rate metrics only: the number under its old name (equal to `value` "
        "when both are sent).",
    )
    recorded_at = serializers.DateTimeField(
        help_text="ISO-8601 with a UTC offset; at most 5 minutes in the future."
    )
    seq = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=INT64_MAX,
        help_text="Required from a device: positive, unique per device; (device, seq) is the "
        "idempotency key. Optional for a manual entry.",
    )
    patient = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=INT64_MAX,
        help_text="Manual entry by a clinician: the patient. Ignored from a device (the "
        "device's assigned patient is used).",
    )


ReadingsRequest = PolymorphicProxySerializer(
    component_name="ReadingOrBatch",
    serializers=[ReadingInSerializer, ReadingInSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)


class RejectedReadingSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request list.")
    seq = serializers.IntegerField(allow_null=True)
    error = ErrorSerializer.fields["error"].__class__()


class RecordsResultSerializer(serializers.Serializer):
    stored = ReadingSerializer(many=True, help_text="Readings stored by this request.")
    duplicates = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Seqs that were already stored: acknowledged, not stored again.",
    )
    rejected = RejectedReadingSerializer(
        many=True, help_text="Items refused (not stored; do not resend), with the reason."
    )


# --- History ----------------------------------------------------------------------------------


class BucketSerializer(serializers.Serializer):
    bucket_start = serializers.DateTimeField()
    metric = serializers.ChoiceField(choices=Metric.choices)
    min = serializers.IntegerField()
    max = serializers.IntegerField()
    mean = serializers.FloatField()
    count = serializers.IntegerField()


class AggregateSerializer(serializers.Serializer):
    """Aggregated history of one patient over [from, to)."""

    # `from` and `to` are Python keywords, hence get_fields().

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "bucket": serializers.IntegerField(help_text="Bucket width in seconds."),
            "from": serializers.DateTimeField(help_text="Start of the range (inclusive)."),
            "to": serializers.DateTimeField(help_text="End of the range (exclusive)."),
            "results": BucketSerializer(many=True, help_text="Oldest bucket first."),
        }


class AggregateQuerySerializer(serializers.Serializer):
    """Query of the aggregated mode of GET /api/records/<patient_id>/ (from/to: see above)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "bucket": serializers.IntegerField(min_value=1, max_value=86400),
            "from": AwareDateTimeField(required=False),
            "to": AwareDateTimeField(required=False),
            "metric": serializers.ChoiceField(choices=Metric.choices, required=False),
        }


class AwareDateTimeField(serializers.DateTimeField):
    """ISO-8601 with a UTC offset; a naive date-time is refused rather than guessed."""

    def to_internal_value(self, value: Any) -> datetime:
        try:
            return parse_aware_datetime(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
