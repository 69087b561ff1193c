from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Metric(models.TextChoices):
    HEART_RATE = "heart_rate", "Heart rate"
    FETAL_HEART_RATE = "fetal_heart_rate", "Fetal heart rate"


class Reading(models.Model):
    """One heart-rate sample. (device, seq) is the idempotency key of device readings."""

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
