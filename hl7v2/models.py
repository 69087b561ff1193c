"""What the HL7 interface keeps: the senders enrolled per place, the ADT messages already
applied (idempotency by MSH-10), and the result status of observations that are not final."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Hl7Sender(models.Model):
    """A gateway or patient administration system allowed to send for one place.

    A message is taken from a sender whose ``address`` (an IP or a CIDR network) holds the
    connection's address and whose ``sending_application`` / ``sending_facility`` equal the
    message's MSH-3 / MSH-4 first components (empty, null on the wire, matches anything); over TLS, a sender with
    a ``tls_subject`` also needs a client certificate with that subject common name.
    """

    place = models.ForeignKey("clinical.Place", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    address = models.CharField(max_length=64, help_text="IP address or CIDR network.")
    # "" stands for null on the wire: matches anything.
    sending_application = models.CharField(max_length=180, blank=True, default="")
    sending_facility = models.CharField(max_length=180, blank=True, default="")
    tls_subject = models.CharField(
        max_length=254,
        blank=True,
        default="",
        help_text="Over TLS: the common name its client certificate must carry (empty: any).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("place_id", "id")

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"


class AdtMessage(models.Model):
    """An ADT message applied: a resend with the same MSH-3 and MSH-10 for the same place is
    answered AA again and changes nothing."""

    place = models.ForeignKey("clinical.Place", on_delete=models.CASCADE, related_name="+")
    sending_application = models.CharField(max_length=180, blank=True)
    control_id = models.CharField(max_length=199)
    event = models.CharField(max_length=8)
    patient = models.ForeignKey(
        "clinical.Patient", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("place", "sending_application", "control_id"),
                name="adt_message_once_per_sender",
            )
        ]

    def __str__(self) -> str:
        return f"ADT^{self.event} {self.control_id}"


class ObservationStatus(models.Model):
    """The OBX-11 result status of an HL7 reading that is not final (preliminary, corrected),
    by the reading's idempotency key; a reading without a row here is final."""

    device_id = models.BigIntegerField()
    seq = models.BigIntegerField()
    status = models.CharField(max_length=16)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("device_id", "seq"), name="observation_status_key")
        ]

    def __str__(self) -> str:
        return f"{self.device_id}/{self.seq}: {self.status}"
