from __future__ import annotations

from django.db import models
from django.utils import timezone

from alerts.models import AlertEvent


class AlertNotification(models.Model):
    """The outbox: one delivery of one alert event to one recipient (an e-mail address, a
    webhook URL, an HL7 alert manager), through one transport (``notifications.transports``).

    Its state moves pending -> sending -> sent, or back to pending with ``next_attempt_at``
    after a transient failure, or to failed once the attempts are exhausted or the failure is
    permanent. An attempt claims the row by that state transition before it sends, so a
    duplicated or redelivered task never sends to one recipient twice. The unique key makes
    planning idempotent.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook"
        HL7 = "hl7", "HL7 alert manager"

    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=500)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    # When a pending delivery is due (its first attempt at once, a retry after its back-off).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the attempt under way began ("sending"). A row still sending long after any send
    # could take belongs to a worker that died mid-send: the sweep hands it out again.
    sending_since = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        db_table = "clinical_alertnotification"  # the table it had in the clinical app
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("event", "channel", "recipient"), name="one_notification_per_recipient"
            ),
        ]
        indexes = [
            models.Index(fields=("state", "next_attempt_at"), name="notification_due"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient} ({self.state})"
