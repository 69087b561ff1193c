"""The access audit trail: one row per access to patient data and per change.

Rows are only ever inserted (``audit.services.audit_record``); on PostgreSQL a trigger refuses
UPDATE and DELETE except inside the retention purge, and the table is range-partitioned by
month (``audit.partitions``). Actor and patient are plain ids, not foreign keys: a record
outlives the user, device or patient it names, and writing it never waits on their rows.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ActorType(models.TextChoices):
    USER = "user"
    DEVICE = "device"
    HL7 = "hl7", "HL7 sender"
    SYSTEM = "system"


class Action(models.TextChoices):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    SEARCH = "search"
    EXECUTE = "execute"
    EXPORT = "export"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all", "Logout everywhere"
    LOCKOUT = "lockout"
    PASSWORD_CHANGE = "password_change", "Password change"
    PASSWORD_RESET = "password_reset", "Password reset"
    OTP_ENROLLED = "otp_enrolled", "Second factor enrolled"
    OTP_RESET = "otp_reset", "Second factor reset"
    TOKEN_ROTATED = "token_rotated", "Device token rotated"
    RECEIVE = "receive", "Message received"


class Outcome(models.TextChoices):
    SUCCESS = "success"
    REFUSED = "refused"
    NOT_FOUND = "not_found", "Not found"
    ERROR = "error"


class Channel(models.TextChoices):
    REST = "rest", "REST API"
    FHIR = "fhir", "FHIR API"
    WS = "ws", "Dashboard WebSocket"
    HL7 = "hl7", "HL7 v2 MLLP"
    ADMIN = "admin", "Django admin"
    SYSTEM = "system"


class AuditRecord(models.Model):
    at = models.DateTimeField(default=timezone.now)
    actor_type = models.CharField(max_length=8, choices=ActorType.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_role = models.CharField(max_length=16, blank=True)
    # What names the actor for people reading the trail later (e-mail, serial, sender).
    actor_label = models.CharField(max_length=254, blank=True)
    address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    action = models.CharField(max_length=24, choices=Action.choices)
    resource_type = models.CharField(max_length=32, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    # The one patient the access was about; a snapshot of many names them all in ``patients``.
    patient_id = models.BigIntegerField(null=True, blank=True)
    # Every patient the access showed, as ",1,2,3," (a portable "contains" filter).
    patients = models.TextField(blank=True, default="")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    query = models.JSONField(null=True, blank=True)
    detail = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ("-at", "-id")
        indexes = [
            models.Index(fields=["at"], name="audit_at"),
            models.Index(fields=["patient_id", "at"], name="audit_patient_at"),
            models.Index(fields=["actor_type", "actor_id", "at"], name="audit_actor_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_type}:{self.actor_id} {self.action}"

    @property
    def patient_ids(self) -> list[int]:
        return [int(part) for part in self.patients.split(",") if part]
