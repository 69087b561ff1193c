"""Celery tasks of the audit trail: month partitions ahead of time, and the retention purge."""

from __future__ import annotations

from celery import shared_task

from audit.partitions import audit_partitions_ensure, audit_purge


@shared_task(name="audit.tasks.audit_maintain", acks_late=True)
def audit_maintain() -> dict[str, int]:
    """Idempotent: beat runs it every day."""
    created = audit_partitions_ensure()
    result = audit_purge()
    return {"created": len(created), "dropped": len(result.dropped), "deleted": result.deleted}
