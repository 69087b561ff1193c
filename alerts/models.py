from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from alerts.vocabulary import AlertState, Priority
from clinical.models import Patient
from monitoring.models import Metric


class Alert(models.Model):
    """One alarm condition of one patient (or device), from raise to resolve."""

    Priority = Priority
    State = AlertState

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="alerts")
    device = models.ForeignKey(
        "clinical.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    kind = models.CharField(max_length=64)
    priority = models.CharField(max_length=8, choices=Priority.choices)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.ACTIVE)
    message = models.CharField(max_length=500)
    raised_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "clinical_alert"  # tables keep the names they had in the clinical app
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
        db_table = "clinical_alertevent"
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
        db_table = "clinical_alarmlimit"
        ordering = ("patient_id", "metric")
        constraints = [
            models.UniqueConstraint(
                fields=("patient", "metric"), name="one_alarm_limit_per_patient_metric"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} limits of patient {self.patient_id}"


class AlarmAudioPause(models.Model):
    """Audit trail of a ward's central-station alarm audio (IEC 60601-1-8): each pause, who
    paused it, for how long, and how it ended. ``mode`` "off" (no end) is for admins only."""

    class Mode(models.TextChoices):
        PAUSED = "paused", "Audio paused"
        OFF = "off", "Audio off"

    class End(models.TextChoices):
        RESUMED = "resumed", "Resumed by a user"
        NEW_ALARM = "new_alarm", "A new high-priority alarm"
        REPLACED = "replaced", "Replaced by a new pause"

    ward = models.ForeignKey("clinical.Ward", on_delete=models.CASCADE, related_name="audio_pauses")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.PAUSED)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audio_pauses"
    )
    started_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)  # none for "off"
    ended_at = models.DateTimeField(null=True, blank=True)  # ended early (else at ends_at)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    end_reason = models.CharField(max_length=16, choices=End.choices, blank=True)

    class Meta:
        ordering = ("-started_at", "-id")
        indexes = [models.Index(fields=("ward", "-started_at"), name="audio_pause_ward_recent")]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} on ward {self.ward_id} by {self.by_id}"


class CtgAlarmLimit(models.Model):
    """A patient's own CTG alarm settings, overriding the defaults (``alerts.ctg_rules``).

    Every field as in ``CtgLimits``; a null threshold switches that alarm off.
    """

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="ctg_limit")
    prolonged_deceleration_seconds = models.PositiveIntegerField(null=True, blank=True)
    pathological_hold_seconds = models.PositiveIntegerField(null=True, blank=True)
    tachysystole_per_10_min = models.PositiveSmallIntegerField(null=True, blank=True)
    tachysystole_hold_seconds = models.PositiveIntegerField()
    signal_loss_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    signal_loss_minutes = models.PositiveSmallIntegerField()
    signal_loss_hold_seconds = models.PositiveIntegerField()
    coincidence_bpm = models.PositiveSmallIntegerField(null=True, blank=True)
    coincidence_seconds = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("patient_id",)

    def __str__(self) -> str:
        return f"CTG alarm settings of patient {self.patient_id}"


class CtgClassification(models.Model):
    """A patient's latest CTG classification, as the alarm evaluator last computed it over the
    last 30 minutes: what the ward tiles show, in every snapshot and live.

    One row per patient, written only when what it shows changes. ``since`` is when the
    classification took its current value, ``at`` when this row's content was computed (both
    the readings' own time).
    """

    class Value(models.TextChoices):
        NORMAL = "normal"
        SUSPICIOUS = "suspicious"
        PATHOLOGICAL = "pathological"
        INSUFFICIENT_SIGNAL = "insufficient_signal", "Insufficient signal"

    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, primary_key=True, related_name="ctg_classification"
    )
    classification = models.CharField(max_length=20, choices=Value.choices)
    baseline_bpm = models.SmallIntegerField(null=True, blank=True)
    reasons = models.JSONField(default=list)
    since = models.DateTimeField()
    at = models.DateTimeField()

    class Meta:
        ordering = ("patient_id",)

    def __str__(self) -> str:
        return f"CTG {self.classification} of patient {self.patient_id}"


class EvaluationCheckpoint(models.Model):
    """How far the alarm evaluators got in one partition of the readings stream, kept where
    the readings are (Redis may forget the stream and its consumer group; this row does not).

    ``evaluated_through`` is the ``received_at`` of the newest reading of the partition
    evaluated, ``stream_id`` the last stream entry acknowledged; written by the evaluator at
    most once a second. ``reset_pending``: the partition's consumer group vanished (Redis
    restarted empty or flushed) and the readings stored since the checkpoint are still to be
    evaluated from the database (``alerts.checkpoints``).
    """

    partition = models.PositiveIntegerField(primary_key=True)
    evaluated_through = models.DateTimeField()
    stream_id = models.CharField(max_length=41, blank=True)
    reset_pending = models.BooleanField(default=False)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ("partition",)

    def __str__(self) -> str:
        return f"partition {self.partition} evaluated through {self.evaluated_through}"
