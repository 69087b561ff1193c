"""The words of alarms: priorities (IEC 60601-1-8) with their ranking, alert states, kinds.

Everything that orders, compares or displays priorities uses this module: the rules, the
lifecycle, the SQL ordering of the alert list and (through the page that serves it) the
dashboard.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Case, IntegerField, Value, When


class Priority(models.TextChoices):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AlertState(models.TextChoices):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# Higher is more urgent. Rule levels are these ranks (1 low, 2 medium, 3 high).
PRIORITY_RANK: dict[str, int] = {Priority.LOW: 1, Priority.MEDIUM: 2, Priority.HIGH: 3}
PRIORITY_OF_RANK: dict[int, str] = {rank: priority for priority, rank in PRIORITY_RANK.items()}
OPEN_STATES: tuple[str, ...] = (AlertState.ACTIVE, AlertState.ACKNOWLEDGED)


def priority_rank_sql(field: str = "priority") -> Case:
    """The ranking as an SQL expression, for ordering by severity in the database."""
    return Case(
        *(When(**{field: priority}, then=Value(rank)) for priority, rank in PRIORITY_RANK.items()),
        default=Value(0),
        output_field=IntegerField(),
    )


KIND_BRADYCARDIA = "bradycardia"
KIND_TACHYCARDIA = "tachycardia"
KIND_FETAL_BRADYCARDIA = "fetal_bradycardia"
KIND_FETAL_TACHYCARDIA = "fetal_tachycardia"
KIND_DEVICE_OFFLINE = "device_offline"


class Action:
    """What an alert event records (``AlertEvent.action``)."""

    RAISED = "raised"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


# CTG alarms (docs/alarms.md, "CTG alarms"); the last two are technical: the trace, not the
# fetus, is in question.
KIND_PROLONGED_DECELERATION = "prolonged_deceleration"
KIND_CTG_PATHOLOGICAL = "ctg_pathological"
KIND_TACHYSYSTOLE = "tachysystole"
KIND_FHR_SIGNAL_LOSS = "fhr_signal_loss"
KIND_FHR_MATERNAL_COINCIDENCE = "fhr_maternal_coincidence"
CTG_KINDS: tuple[str, ...] = (
    KIND_PROLONGED_DECELERATION,
    KIND_CTG_PATHOLOGICAL,
    KIND_TACHYSYSTOLE,
    KIND_FHR_SIGNAL_LOSS,
    KIND_FHR_MATERNAL_COINCIDENCE,
)
# An alarm page (e-mail, webhook, HL7 alert manager) that could not be delivered.
KIND_DELIVERY_FAILED = "delivery_failed"
TECHNICAL_KINDS = frozenset(
    {
        KIND_DEVICE_OFFLINE,
        KIND_FHR_SIGNAL_LOSS,
        KIND_FHR_MATERNAL_COINCIDENCE,
        KIND_DELIVERY_FAILED,
    }
)

# The alarm's short name: what a tile's alarm band shows whole (at most 18 characters, so it
# fits the narrowest tile beside its priority), the message with its numbers going to the
# alarm list and the tooltip.
KIND_SHORT_NAMES: dict[str, str] = {
    KIND_BRADYCARDIA: "Bradycardia",
    KIND_TACHYCARDIA: "Tachycardia",
    KIND_FETAL_BRADYCARDIA: "Fetal bradycardia",
    KIND_FETAL_TACHYCARDIA: "Fetal tachycardia",
    KIND_DEVICE_OFFLINE: "Monitor offline",
    KIND_PROLONGED_DECELERATION: "Prolonged decel.",
    KIND_CTG_PATHOLOGICAL: "CTG pathological",
    KIND_TACHYSYSTOLE: "Tachysystole",
    KIND_FHR_SIGNAL_LOSS: "FHR signal loss",
    KIND_FHR_MATERNAL_COINCIDENCE: "FHR = maternal HR",
    KIND_DELIVERY_FAILED: "Page not delivered",
}
