"""Request parsing and response rendering for readings; no business rules here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from common.api import ErrorSerializer
from common.datetimes import iso_utc, parse_aware_datetime
from common.ids import INT64_MAX
from ctg.analysis import (
    EARLY,
    INSUFFICIENT,
    LATE,
    NORMAL,
    PATHOLOGICAL,
    SUSPICIOUS,
    VARIABLE,
)
from ctg.maternal import capture_stretches
from ctg.window import CtgReading
from monitoring.models import HEART_RATE_METRICS, Metric
from monitoring.notes import note_payload

# --- Readings ---------------------------------------------------------------------------------


class ReadingSerializer(serializers.Serializer):
    """A stored reading (a model row or an ingest result)."""

    id = serializers.IntegerField()
    patient = serializers.IntegerField(source="patient_id")
    device = serializers.IntegerField(source="device_id", allow_null=True)
    metric = serializers.ChoiceField(choices=Metric.choices)
    value = serializers.IntegerField(
        source="bpm",
        help_text="The reading's number: bpm for heart rates, relative toco units (0-100) for "
        "uterine activity.",
    )
    bpm = serializers.IntegerField(
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


# --- CTG --------------------------------------------------------------------------------------


def ctg_payload(*, patient_id: int, reading: CtgReading) -> dict[str, Any]:
    """The CTG reading as GET /api/patients/<id>/ctg/ answers it (``CtgSerializer``
    documents it). ``ongoing`` marks an event still going on at the window's end."""
    result = reading.result
    return {
        "patient": patient_id,
        "from": iso_utc(reading.window_start),
        "to": iso_utc(reading.end),
        "monitored_since": None
        if reading.monitored_since is None
        else iso_utc(max(reading.monitored_since, reading.window_start)),
        "monitored_seconds": reading.monitored_seconds,
        "needs_minutes": reading.needs_minutes,
        "baseline_bpm": result.baseline_bpm,
        "variability_bpm": result.variability_bpm,
        "accelerations": [
            {
                "start": iso_utc(a.start),
                "end": iso_utc(a.end),
                "peak_bpm": a.peak_bpm,
                "ongoing": a.ongoing,
            }
            for a in result.accelerations
        ],
        "decelerations": [
            {
                "start": iso_utc(d.start),
                "end": iso_utc(d.end),
                "nadir_bpm": d.nadir_bpm,
                "depth_bpm": d.depth_bpm,
                "prolonged": d.prolonged,
                "kind": d.kind,
                "ongoing": d.ongoing,
            }
            for d in result.decelerations
        ],
        "contractions": [
            {"start": iso_utc(c.start), "end": iso_utc(c.end), "peak": c.peak}
            for c in result.contractions
        ],
        "contractions_per_10_min": result.contractions_per_10_min,
        "tachysystole": result.tachysystole,
        "signal_loss_percent": result.signal_loss_percent,
        "maternal_capture": _maternal_stretches(reading),
        "excluded_percent": result.excluded_percent,
        "classification": result.classification,
        "reasons": result.reasons,
    }


def _maternal_stretches(reading: CtgReading) -> list[dict[str, Any]]:
    """The stretches of the analysed part where the fetal channel records the mother."""
    capture = reading.maternal
    if capture is None:
        return []
    origin = reading.result.start
    return [
        {
            "start": iso_utc(origin + lo),
            "end": iso_utc(origin + hi),
            "confirmed": any(capture.confirmed[lo:hi]),
            "excluded": any(capture.excluded[lo:hi]),
        }
        for lo, hi in capture_stretches(capture.seconds)
    ]


class CtgAccelerationSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    peak_bpm = serializers.IntegerField()
    ongoing = serializers.BooleanField(help_text="Still going on at the window's end.")


class CtgDecelerationSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    nadir_bpm = serializers.IntegerField()
    depth_bpm = serializers.IntegerField(help_text="Baseline minus nadir.")
    prolonged = serializers.BooleanField(help_text="Longer than 3 minutes.")
    kind = serializers.ChoiceField(
        choices=[EARLY, LATE, VARIABLE],
        allow_null=True,
        help_text="Against the contractions; null where it cannot be told (or prolonged).",
    )
    ongoing = serializers.BooleanField(help_text="Still going on at the window's end.")


class CtgContractionSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    peak = serializers.IntegerField(help_text="Highest uterine activity (toco units).")


class CtgMaternalCaptureSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    confirmed = serializers.BooleanField(
        help_text=(
            "The maternal heart rate confirms it; false: the fetal channel's shape alone "
            "suggests it."
        )
    )
    excluded = serializers.BooleanField(
        help_text=(
            "Left out of the analysis (confirmed, at a rate that passes for a fetal baseline, "
            "110 bpm or more); otherwise still analysed."
        )
    )


class CtgSerializer(serializers.Serializer):
    """The CTG analysis of a window (FIGO 2015); docs/ctg.md says how each number is read."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "patient": serializers.IntegerField(),
            "from": serializers.DateTimeField(),
            "to": serializers.DateTimeField(),
            "baseline_bpm": serializers.IntegerField(
                allow_null=True, help_text="Latest 10-minute period's baseline, to 5 bpm."
            ),
            "variability_bpm": serializers.FloatField(
                allow_null=True, help_text="Median bandwidth of the 1-minute segments."
            ),
            "accelerations": CtgAccelerationSerializer(many=True),
            "decelerations": CtgDecelerationSerializer(many=True),
            "contractions": CtgContractionSerializer(many=True),
            "contractions_per_10_min": serializers.FloatField(
                allow_null=True, help_text="Averaged over the last 30 minutes of the window."
            ),
            "tachysystole": serializers.BooleanField(
                help_text="More than 5 contractions per 10 minutes over 30 minutes."
            ),
            "monitored_since": serializers.DateTimeField(
                allow_null=True,
                help_text=(
                    "Start of the analysed part: the window's start, or the first reading of "
                    "the current monitoring session when it began later (a gap of more than 10 "
                    "minutes without fetal heart rate and uterine activity starts a new one); "
                    "null when nothing was recorded."
                ),
            ),
            "monitored_seconds": serializers.IntegerField(
                help_text="Length of the analysed (monitored) part of the window."
            ),
            "needs_minutes": serializers.IntegerField(
                allow_null=True,
                help_text=(
                    "Set when the monitoring is too short to classify yet (less than one "
                    "10-minute baseline period): the minutes still needed."
                ),
            ),
            "signal_loss_percent": serializers.FloatField(
                help_text="Share of the monitored seconds without a fetal heart rate."
            ),
            "maternal_capture": CtgMaternalCaptureSerializer(
                many=True,
                help_text=(
                    "Stretches of the analysed part where the fetal channel records the "
                    "mother (docs/ctg.md, maternal capture)."
                ),
            ),
            "excluded_percent": serializers.FloatField(
                help_text=(
                    "Share of the monitored seconds left out of the analysis because the "
                    "fetal channel records the mother."
                )
            ),
            "classification": serializers.ChoiceField(
                choices=[NORMAL, SUSPICIOUS, PATHOLOGICAL, INSUFFICIENT]
            ),
            "reasons": serializers.ListField(child=serializers.CharField()),
        }


class CtgQuerySerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": AwareDateTimeField(required=False),
            "to": AwareDateTimeField(required=False),
        }


# --- Strip notes ------------------------------------------------------------------------------


class NoteAuthorSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null once the account is gone.")
    name = serializers.CharField()


class NoteAddendumSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    author = NoteAuthorSerializer()
    created_at = serializers.DateTimeField()


class NoteSerializer(serializers.Serializer):
    """A strip note as ``monitoring.notes.note_payload`` renders it (REST and live frames)."""

    id = serializers.IntegerField()
    patient = serializers.IntegerField()
    at = serializers.DateTimeField(help_text="The moment of the trace the note is about.")
    text = serializers.CharField()
    author = NoteAuthorSerializer()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(
        allow_null=True, help_text="When the author last corrected it, or null."
    )
    editable_until = serializers.DateTimeField(
        help_text="Until then its author may correct it; afterwards it is only annotated."
    )
    addenda = NoteAddendumSerializer(many=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return note_payload(instance)


class NoteInSerializer(serializers.Serializer):
    at = AwareDateTimeField(help_text="The moment of the trace (ISO-8601 with offset).")
    text = serializers.CharField(max_length=1000)


class NoteEditSerializer(serializers.Serializer):
    at = AwareDateTimeField(required=False)
    text = serializers.CharField(max_length=1000, required=False)


class NoteAddendumInSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=1000)
