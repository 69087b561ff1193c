"""Reading the audit trail back (admins only; the views check the role)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from audit.models import AuditRecord


def audit_records(
    *,
    patient: int | None = None,
    actor: int | None = None,
    actor_type: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditRecord]:
    """Records newest first. ``patient`` matches the record's patient and every patient a
    snapshot showed; ``actor`` is a user id unless ``actor_type`` says otherwise."""
    records = AuditRecord.objects.all()
    if patient is not None:
        records = records.filter(Q(patient_id=patient) | Q(patients__contains=f",{patient},"))
    if actor is not None:
        records = records.filter(actor_type=actor_type or "user", actor_id=actor)
    if action:
        records = records.filter(action=action)
    if outcome:
        records = records.filter(outcome=outcome)
    if since is not None:
        records = records.filter(at__gte=since)
    if until is not None:
        records = records.filter(at__lt=until)
    return records.order_by("-at", "-id")


def audit_record_payload(record: AuditRecord) -> dict[str, object]:
    """The contract's record shape (plus the actor's label, the channel and the patients a
    snapshot showed)."""
    return {
        "id": record.pk,
        "at": record.at.isoformat().replace("+00:00", "Z"),
        "actor": {
            "type": record.actor_type,
            "id": record.actor_id,
            "role": record.actor_role or None,
            "label": record.actor_label or None,
        },
        "address": record.address or None,
        "user_agent": record.user_agent or None,
        "channel": record.channel,
        "action": record.action,
        "resource": {"type": record.resource_type or None, "id": record.resource_id or None},
        "patient": record.patient_id,
        "patients": record.patient_ids,
        "outcome": record.outcome,
        "request_id": record.request_id or None,
        "query": record.query,
        "detail": record.detail,
    }
