"""Celery tasks of monitoring: the readings table's partitions and retention (PostgreSQL)."""

from __future__ import annotations

import logging

from celery import shared_task

from monitoring.partitions import readings_partitions_ensure, readings_retention_apply

logger = logging.getLogger(__name__)


@shared_task(name="monitoring.tasks.readings_partitions_maintain", acks_late=True)
def readings_partitions_maintain() -> dict[str, int]:
    """Create the day partitions ahead of time, then apply retention. Idempotent: beat runs
    it every hour, and a run that failed halfway is finished by the next one."""
    created = readings_partitions_ensure()
    result = readings_retention_apply()
    if result.dropped:
        logger.info(
            "Readings retention: dropped %s, archived %d readings around alerts",
            ", ".join(result.dropped),
            result.archived,
        )
    return {"created": len(created), "dropped": len(result.dropped), "archived": result.archived}
