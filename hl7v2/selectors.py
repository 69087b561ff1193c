"""Reads of what the HL7 interface keeps, for the apps above it (FHIR)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from hl7v2.models import ObservationStatus


def observation_statuses(
    *, keys: Iterable[tuple[int | None, int | None]]
) -> dict[tuple[int, int], str]:
    """The result status of the readings (by (device, seq)) that are not final; a key not
    in the answer is final. One query, none when no reading came with a key."""
    wanted = {(d, s) for d, s in keys if d is not None and s is not None}
    if not wanted:
        return {}
    match = Q(pk__in=[])
    for device_id in {d for d, _ in wanted}:
        match |= Q(device_id=device_id, seq__in=[s for d, s in wanted if d == device_id])
    return {(row.device_id, row.seq): row.status for row in ObservationStatus.objects.filter(match)}
