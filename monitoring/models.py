from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Metric(models.TextChoices):
    HEART_RATE = "heart_rate", "Heart rate"
    FETAL_HEART_RATE = "fetal_heart_rate", "Fetal heart rate"
    UTERINE_ACTIVITY = "uterine_activity", "Uterine activity"


# Metrics whose number is a rate in beats per minute (its old name ``bpm`` stays on the wire).
HEART_RATE_METRICS = frozenset({Metric.HEART_RATE, Metric.FETAL_HEART_RATE})


class Reading(models.Model):
    """One sample of a metric. (device, seq) is the idempotency key of device readings.

    The column ``bpm`` holds the reading's number (``value`` on the wire): beats per minute for
    the heart-rate metrics, relative toco units (0-100) for uterine activity. It kept its name
    so that no table changes and no client breaks.
    """

    patient = models.ForeignKey("clinical.Patient", on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey(
        "clinical.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    metric = models.CharField(max_length=20, choices=Metric.choices)
    bpm = models.SmallIntegerField()
    recorded_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    seq = models.BigIntegerField(null=True, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-recorded_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=("device", "seq"), name="reading_device_seq_unique"),
        ]
        indexes = [
            models.Index(
                fields=("patient", "metric", "recorded_at"), name="reading_patient_metric_time"
            ),
            models.Index(fields=("patient", "recorded_at"), name="reading_patient_time"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.bpm} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"
