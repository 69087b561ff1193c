from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from common.validators import no_control_characters


class Place(models.Model):
    """A hospital or a clinic: the unit of membership and visibility."""

    class Kind(models.TextChoices):
        HOSPITAL = "hospital"
        CLINIC = "clinic"

    name = models.CharField(max_length=200, validators=[no_control_characters])
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.HOSPITAL)
    address = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    webhook_url = models.URLField(blank=True, help_text="Optional: alert events are POSTed here.")
    webhook_secret = models.CharField(max_length=128, blank=True, help_text="HMAC-SHA256 key.")
    # An HL7 alert manager (nurse call, paging): alert events go there as IHE PCD-04 ORU^R40
    # over MLLP when both are set (docs/hl7.md).
    alert_manager_host = models.CharField(
        max_length=255, blank=True, help_text="Optional: HL7 alert manager host (PCD-04 over MLLP)."
    )
    alert_manager_port = models.PositiveIntegerField(
        null=True, blank=True, help_text="The HL7 alert manager's MLLP port."
    )
    # IEC 60601-1-8 "audio paused": how long a central station's pause silences alarm sound.
    alarm_audio_pause_seconds = models.PositiveIntegerField(
        default=120,
        validators=[MinValueValidator(10), MaxValueValidator(600)],
        help_text="How long pausing the alarm audio at a central station lasts (10-600 s).",
    )
    # A place may require a second factor of the doctors (and administrators) who belong to
    # it, beside MFA_REQUIRED_ROLES (accounts/mfa.py asks ``clinical.selectors``).
    mfa_required_for_doctors = models.BooleanField(
        "second factor required for doctors",
        default=False,
        help_text="Doctors and administrators who are members of this place must sign in with "
        "a second factor (authenticator app); nurses are not asked.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Who belongs to the place: the unit of visibility. Declared here so that accounts knows
    # nothing of places; ``user.places`` is the reverse side (the table is the one the
    # relation had when it was declared on the user).
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="places", blank=True, db_table="accounts_user_places"
    )

    class Meta:
        ordering = ("name", "id")

    def __str__(self) -> str:
        return self.name


class Ward(models.Model):
    place = models.ForeignKey(Place, on_delete=models.PROTECT, related_name="wards")
    name = models.CharField(max_length=200, validators=[no_control_characters])

    class Meta:
        ordering = ("place_id", "name", "id")
        constraints = [
            models.UniqueConstraint(fields=("place", "name"), name="ward_name_unique_in_place"),
        ]

    def __str__(self) -> str:
        return f"{self.place.name} / {self.name}"


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "F"
        MALE = "M"
        OTHER = "O"

    class Profile(models.TextChoices):
        ADULT = "adult"
        OBSTETRIC = "obstetric", "Obstetric (maternal and fetal heart rate)"

    name = models.CharField(max_length=200, validators=[no_control_characters])
    mrn = models.CharField(
        "medical record number", max_length=64, validators=[no_control_characters]
    )
    date_of_birth = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, choices=Sex.choices)
    monitoring_profile = models.CharField(
        max_length=16, choices=Profile.choices, default=Profile.ADULT
    )
    place = models.ForeignKey(Place, on_delete=models.PROTECT, related_name="patients")
    ward = models.ForeignKey(
        Ward, on_delete=models.PROTECT, related_name="patients", null=True, blank=True
    )
    bed = models.CharField(max_length=32, blank=True, validators=[no_control_characters])
    admitted_at = models.DateTimeField(default=timezone.now)
    discharged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("place_id", "ward_id", "bed", "id")
        constraints = [
            models.UniqueConstraint(fields=("place", "mrn"), name="patient_mrn_unique_in_place"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.mrn})"


class Device(models.Model):
    """A bedside monitor. Its token is stored only as a SHA-256 hash."""

    serial = models.CharField(max_length=64, unique=True)
    model = models.CharField(max_length=100, blank=True)
    place = models.ForeignKey(Place, on_delete=models.PROTECT, related_name="devices")
    # One-to-one: a patient has at most one device at a time.
    patient = models.OneToOneField(
        "Patient", on_delete=models.SET_NULL, null=True, blank=True, related_name="device"
    )
    is_active = models.BooleanField(default=True)
    token_hash = models.CharField(max_length=64, unique=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "monitoring_device"  # the table it had when monitoring declared it
        ordering = ("serial",)

    def __str__(self) -> str:
        return self.serial
