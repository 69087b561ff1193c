from __future__ import annotations

from django.db import models
from django.utils import timezone

from alerts.models import AlertEvent


class AlertNotification(models.Model):
    """One delivery of one alert event to one recipient (e-mail address or webhook URL).

    The unique key makes the fan-out tasks idempotent: a retried or duplicated task skips
    every recipient already marked sent.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"
        HL7 = "hl7", "HL7 alert manager"

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Set while an attempt is under way ("sending"), cleared when it ends either way. A row
    # still sending long after any send could take belongs to a worker that died mid-send:
    # the delivery sweep queues its event again and the next attempt takes it over.
    sending_since = models.DateTimeField(null=True, blank=True)
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

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "sending" if self.sending_since else "pending"
        return f"{self.channel} to {self.recipient} ({state})"
