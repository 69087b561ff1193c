from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Place(models.Model):
    """A hospital or a clinic: the unit of membership and visibility."""

    class Kind(models.TextChoices):
        HOSPITAL = "hospital", "Hospital"
        CLINIC = "clinic", "Clinic"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.HOSPITAL)
    address = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    webhook_url = models.URLField(blank=True, help_text="Optional: alert events are POSTed here.")
    webhook_secret = models.CharField(max_length=128, blank=True, help_text="HMAC-SHA256 key.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name", "id")

    def __str__(self) -> str:
        return self.name


class Ward(models.Model):
    place = models.ForeignKey(Place, on_delete=models.PROTECT, related_name="wards")
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ("place_id", "name", "id")
        constraints = [
            models.UniqueConstraint(fields=("place", "name"), name="ward_name_unique_in_place"),
        ]

    def __str__(self) -> str:
        return f"{self.place.name} / {self.name}"


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        OTHER = "O", "Other"

    class Profile(models.TextChoices):
        ADULT = "adult", "Adult"
        OBSTETRIC = "obstetric", "Obstetric (maternal and fetal heart rate)"

    name = models.CharField(max_length=200)
    mrn = models.CharField("medical record number", max_length=64)
    date_of_birth = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, choices=Sex.choices)
    monitoring_profile = models.CharField(
        max_length=16, choices=Profile.choices, default=Profile.ADULT
    )
    place = models.ForeignKey(Place, on_delete=models.PROTECT, related_name="patients")
    ward = models.ForeignKey(
        Ward, on_delete=models.PROTECT, related_name="patients", null=True, blank=True
    )
    bed = models.CharField(max_length=32, blank=True)
    admitted_at = models.DateTimeField(default=timezone.now)
    discharged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("place_id", "ward_id", "bed", "id")
        constraints = [
            models.UniqueConstraint(fields=("place", "mrn"), name="patient_mrn_unique_in_place"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.mrn})"


class Alert(models.Model):
    """One alarm condition of one patient (or device), from raise to resolve."""

    class Priority(models.TextChoices):
        HIGH = "high", "High"
        MEDIUM = "medium", "Medium"
        LOW = "low", "Low"

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="alerts")
    device = models.ForeignKey(
        "monitoring.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    kind = models.CharField(max_length=64)
    priority = models.CharField(max_length=8, choices=Priority.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    message = models.CharField(max_length=500)
    raised_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-raised_at", "-id")
        indexes = [models.Index(fields=("state", "priority")), models.Index(fields=("raised_at",))]
        constraints = [
            # At most one open alert per patient and alarm type.
            models.UniqueConstraint(
                fields=("patient", "kind"),
                condition=~models.Q(state="resolved"),
                name="one_open_alert_per_patient_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.priority} ({self.state})"


class AlertEvent(models.Model):
    """Audit trail: every transition of an alert, with who and when."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=32)  # raised, updated, acknowledged, resolved, escalated
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("at", "id")

    def __str__(self) -> str:
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M:%S}"


class AlarmLimit(models.Model):
    """A patient's own alarm bands for one metric, overriding the profile's defaults.

    ``brady_*`` thresholds raise the low-rate alarm when the rate is at or below them,
    ``tachy_*`` thresholds the high-rate alarm when it is at or above them; the suffix is the
    IEC 60601-1-8 priority. A null threshold switches that band off. Each band must hold for
    its priority's hold time before it raises anything (transients raise nothing).
    """

    class Metric(models.TextChoices):
        HEART_RATE = "heart_rate", "Heart rate"
        FETAL_HEART_RATE = "fetal_heart_rate", "Fetal heart rate"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="alarm_limits")
    metric = models.CharField(max_length=20, choices=Metric.choices)
    brady_high = models.SmallIntegerField(null=True, blank=True)
    brady_medium = models.SmallIntegerField(null=True, blank=True)
    brady_low = models.SmallIntegerField(null=True, blank=True)
    tachy_low = models.SmallIntegerField(null=True, blank=True)
    tachy_medium = models.SmallIntegerField(null=True, blank=True)
    tachy_high = models.SmallIntegerField(null=True, blank=True)
    hold_high_seconds = models.PositiveIntegerField()
    hold_medium_seconds = models.PositiveIntegerField()
    hold_low_seconds = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("patient_id", "metric")
        constraints = [
            models.UniqueConstraint(
                fields=("patient", "metric"), name="one_alarm_limit_per_patient_metric"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} limits of patient {self.patient_id}"


class AlertNotification(models.Model):
    """One delivery of one alert event to one recipient (e-mail address or webhook URL).

    The unique key makes the fan-out tasks idempotent: a retried or duplicated task skips
    every recipient already marked sent.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("event", "channel", "recipient"), name="one_notification_per_recipient"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient} ({'sent' if self.sent_at else 'pending'})"
