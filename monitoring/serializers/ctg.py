"""The CTG endpoint's query and answer (GET /api/patients/<id>/ctg/); no business rules here."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from common.datetimes import iso_utc
from ctg.analysis import CLASSIFICATIONS, DECELERATION_KINDS
from ctg.maternal import capture_stretches
from ctg.window import CtgReading
from monitoring.serializers.records import AwareDateTimeField


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


# A stretch of the window (an event, a contraction, a capture): where it starts and ends. (A
# comment, not a docstring: the schema would give it to every subclass as its description.)
class _CtgSpanSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class CtgAccelerationSerializer(_CtgSpanSerializer):
    peak_bpm = serializers.IntegerField()
    ongoing = serializers.BooleanField(help_text="Still going on at the window's end.")


class CtgDecelerationSerializer(_CtgSpanSerializer):
    nadir_bpm = serializers.IntegerField()
    depth_bpm = serializers.IntegerField(help_text="Baseline minus nadir.")
    prolonged = serializers.BooleanField(help_text="Longer than 3 minutes.")
    kind = serializers.ChoiceField(
        choices=DECELERATION_KINDS,
        allow_null=True,
        help_text="Against the contractions; null where it cannot be told (or prolonged).",
    )
    ongoing = serializers.BooleanField(help_text="Still going on at the window's end.")


class CtgContractionSerializer(_CtgSpanSerializer):
    peak = serializers.IntegerField(help_text="Highest uterine activity (toco units).")


class CtgMaternalCaptureSerializer(_CtgSpanSerializer):
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
            "classification": serializers.ChoiceField(choices=CLASSIFICATIONS),
            "reasons": serializers.ListField(child=serializers.CharField()),
        }


class CtgQuerySerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": AwareDateTimeField(required=False),
            "to": AwareDateTimeField(required=False),
        }
