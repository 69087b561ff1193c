from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Metric(models.TextChoices):
    HEART_RATE = "heart_rate", "Heart rate"
    FETAL_HEART_RATE = "fetal_heart_rate", "Fetal heart rate"
    UTERINE_ACTIVITY = "uterine_activity", "Uterine activity"
    # The pulse rate a pulse oximeter (or another non-ECG source) counts: its own metric, so a
    # pulse is never shown, charted or coded as the ECG heart rate of the same second.
    PULSE_RATE = "pulse_rate", "Pulse rate"


# Metrics whose number is a rate in beats per minute (its old name ``bpm`` stays on the wire).
HEART_RATE_METRICS = frozenset({Metric.HEART_RATE, Metric.FETAL_HEART_RATE, Metric.PULSE_RATE})


class ReadingColumns(models.Model):
    """The columns of a stored reading, the same in the readings table and in its archive.

    ``value`` is the reading's number (``value`` on the wire too, and ``bpm`` for the heart-rate
    metrics): beats per minute for the heart-rate metrics, relative toco units (0-100) for
    uterine activity. Its column is still named ``bpm``, so that no table changes (the readings
    table is partitioned on PostgreSQL) and raw SQL that names the column keeps working.
    """

    patient = models.ForeignKey("clinical.Patient", on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey(
        "clinical.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    metric = models.CharField(max_length=20, choices=Metric.choices)
    value = models.SmallIntegerField(db_column="bpm")
    recorded_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    seq = models.BigIntegerField(null=True, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True
        ordering = ("-recorded_at", "-id")


class Reading(ReadingColumns):
    """One sample of a metric. (device, seq) is the idempotency key of device readings."""

    class Meta(ReadingColumns.Meta):
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
        return f"{self.metric} {self.value} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"


class ReadingKey(models.Model):
    """The (device, seq) of every stored device reading: the idempotency key on PostgreSQL.

    There the readings table is partitioned by ``recorded_at`` and a partitioned table's unique
    keys must contain the partition key, so ``(device_id, seq)`` cannot be unique across
    partitions; this plain table holds the key instead and is written in the same statement as
    the reading (``monitoring.readings.readings_store``). Retention deletes the keys of the
    readings it drops. SQLite keeps one plain readings table with its own unique constraint and
    leaves this table empty. No foreign key: device ids are never reused.
    """

    pk = models.CompositePrimaryKey("device_id", "seq")
    device_id = models.BigIntegerField()
    seq = models.BigIntegerField()

    def __str__(self) -> str:
        return f"device {self.device_id} seq {self.seq}"


class ReadingArchive(ReadingColumns):
    """A reading copied out of a partition before retention dropped it, because it lies in the
    window around an alert (``READINGS_ARCHIVE_BEFORE_MINUTES`` before the alert was raised to
    ``READINGS_ARCHIVE_AFTER_MINUTES`` after it resolved). Same columns as ``Reading``, same
    ``id``; kept until someone deletes it."""

    id = models.BigIntegerField(primary_key=True)
    received_at = models.DateTimeField()  # copied, never defaulted
    archived_at = models.DateTimeField(default=timezone.now)

    class Meta(ReadingColumns.Meta):
        indexes = [
            models.Index(fields=("patient", "recorded_at"), name="readingarchive_patient_time"),
        ]

    def __str__(self) -> str:
        return f"archived {self.metric} {self.value} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"


class StreamBacklog(models.Model):
    """Stored readings that could not be appended to the readings stream when they were stored
    (Redis unreachable), written in the same transaction as the readings: a reading is stored
    exactly when it is in the stream or here. ``monitoring.stream.backlog`` appends them to
    the stream, oldest first, once Redis answers, and deletes the row in the same step, so the
    alarm evaluator evaluates every stored reading."""

    created_at = models.DateTimeField(default=timezone.now)
    # The stream entries, as ``monitoring.stream.entries.reading_encode`` makes them.
    entries = models.JSONField()
    size = models.PositiveIntegerField()  # len(entries), summed by readiness

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{len(self.entries)} readings deferred at {self.created_at:%Y-%m-%d %H:%M:%S}"


class StreamReplay(models.Model):
    """Readings of one readings-stream partition that reached the stream late, from the backlog
    (Redis was away when they were stored), as the range of their received times. Kept
    ``monitoring.stream.backlog.REPLAYS_KEPT_SECONDS``: if Redis loses them again before the
    alarm evaluator read them, its catch-up (``alerts.checkpoints``), which otherwise goes back
    only to the evaluator's checkpoint, evaluates them from the database too."""

    appended_at = models.DateTimeField(default=timezone.now, db_index=True)
    partition = models.PositiveSmallIntegerField()
    received_from = models.DateTimeField()
    received_until = models.DateTimeField()

    def __str__(self) -> str:
        return (
            f"partition {self.partition}: readings received {self.received_from:%H:%M:%S}-"
            f"{self.received_until:%H:%M:%S} appended at {self.appended_at:%Y-%m-%d %H:%M:%S}"
        )


class StripNote(models.Model):
    """A clinician's note at a moment of a patient's trace ("vaginal examination 6 cm",
    "epidural", "oxytocin up"), shown on the CTG strip, in the history and in the CTG record.

    Part of the clinical record: the author may correct a note for ``NOTE_EDIT_MINUTES`` after
    writing it (``edited_at`` says that it was); afterwards it is only annotated by addenda,
    which are notes of their own (``addendum_to``) that keep the original as it was. The
    author's name is copied so that the note still says who wrote it if the account goes.
    """

    patient = models.ForeignKey("clinical.Patient", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(help_text="The moment of the trace the note is about.")
    text = models.TextField(max_length=1000)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    author_name = models.CharField(max_length=301)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    addendum_to = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="addenda"
    )

    class Meta:
        ordering = ("-at", "-id")
        indexes = [models.Index(fields=("patient", "at"), name="stripnote_patient_at")]

    def __str__(self) -> str:
        return f"note at {self.at:%Y-%m-%d %H:%M:%S}: {self.text[:40]}"
