"""Representations of alerts, their audit events and alarm limits."""

from __future__ import annotations

from rest_framework import serializers

from alerts.models import Alert, AlertEvent
from alerts.rules import HOLD_FIELDS, KIND_METRIC, THRESHOLD_FIELDS
from monitoring.models import Metric


class AlertSerializer(serializers.ModelSerializer):
    patient_name = serializers.CharField(source="patient.name", read_only=True)
    bed = serializers.CharField(source="patient.bed", read_only=True)
    ward = serializers.IntegerField(source="patient.ward_id", read_only=True, allow_null=True)
    place = serializers.IntegerField(source="patient.place_id", read_only=True)
    metric = serializers.SerializerMethodField(
        help_text="The metric a clinical alarm is about; null for technical alarms."
    )

    class Meta:
        model = Alert
        fields: tuple[str, ...] = (
            "id",
            "patient",
            "patient_name",
            "bed",
            "ward",
            "place",
            "device",
            "kind",
            "metric",
            "priority",
            "state",
            "message",
            "raised_at",
            "updated_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
        )
        read_only_fields = fields

    def get_metric(self, alert: Alert) -> str | None:
        return KIND_METRIC.get(alert.kind)


class AlertEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertEvent
        fields = ("id", "action", "at", "by", "note")
        read_only_fields = fields


class AlertDetailSerializer(AlertSerializer):
    events = AlertEventSerializer(many=True, read_only=True)

    class Meta(AlertSerializer.Meta):
        fields = (*AlertSerializer.Meta.fields, "events")
        read_only_fields = fields


class AlertActionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


def _threshold(help_text: str) -> serializers.IntegerField:
    """An alarm setting: left out, it keeps its value; null switches its alarm off."""
    return serializers.IntegerField(required=False, allow_null=True, help_text=help_text)


class AlarmLimitSerializer(serializers.Serializer):
    """One metric's bands. Omitted fields keep their current value; null switches a band off."""

    metric = serializers.ChoiceField(choices=Metric.choices)
    brady_high = _threshold("High priority when the rate is at or below this (bpm).")
    brady_medium = _threshold("Medium priority when the rate is at or below this (bpm).")
    brady_low = _threshold("Low priority when the rate is at or below this (bpm).")
    tachy_low = _threshold("Low priority when the rate is at or above this (bpm).")
    tachy_medium = _threshold("Medium priority when the rate is at or above this (bpm).")
    tachy_high = _threshold("High priority when the rate is at or above this (bpm).")
    hold_high_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=3600, help_text="Hold time of the high bands."
    )
    hold_medium_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=3600, help_text="Hold time of the medium bands."
    )
    hold_low_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=3600, help_text="Hold time of the low bands."
    )
    # A declared field: DRF's metaclass moves it off the class, so it does not replace the
    # ``Field.source`` attribute the stubs see here.
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a field, not Field.source
        choices=(("default", "default"), ("patient", "patient")),
        read_only=True,
        help_text="default: the profile's defaults; patient: this patient's own limits.",
    )

    FIELDS = (*THRESHOLD_FIELDS, *HOLD_FIELDS)


class PatientAlarmLimitsSerializer(serializers.Serializer):
    patient = serializers.IntegerField(read_only=True)
    monitoring_profile = serializers.CharField(read_only=True)
    limits = AlarmLimitSerializer(many=True)

    def validate_limits(self, value: list[dict]) -> list[dict]:
        if not value:
            raise serializers.ValidationError("Give the limits of at least one metric.")
        return value


class CtgAlarmLimitsSerializer(serializers.Serializer):
    """A patient's CTG alarm settings (docs/alarms.md, "CTG alarms"). On PUT, fields left out
    keep their current value; null switches that alarm off."""

    patient = serializers.IntegerField(read_only=True)
    prolonged_deceleration_seconds = _threshold(
        "Raise prolonged_deceleration once a deceleration lasts longer (60-1800)."
    )
    pathological_hold_seconds = _threshold(
        "ctg_pathological: how long the classification must stay pathological."
    )
    tachysystole_per_10_min = _threshold(
        "tachysystole: more contractions per 10 minutes than this, over 30 min."
    )
    tachysystole_hold_seconds = serializers.IntegerField(required=False)
    signal_loss_percent = _threshold(
        "fhr_signal_loss: more of the fetal heart rate missing than this share ..."
    )
    signal_loss_minutes = serializers.IntegerField(
        required=False, help_text="... over the last this many minutes."
    )
    signal_loss_hold_seconds = serializers.IntegerField(required=False)
    coincidence_bpm = _threshold(
        "fhr_maternal_coincidence: fetal within this many bpm of maternal ..."
    )
    coincidence_seconds = serializers.IntegerField(
        required=False, help_text="... for longer than this."
    )
    # A declared field (see AlarmLimitSerializer.source).
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a field, not Field.source
        choices=(("default", "default"), ("patient", "patient")),
        read_only=True,
        help_text="default: the defaults; patient: this patient's own settings.",
    )
