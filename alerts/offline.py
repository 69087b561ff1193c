"""The device-offline scan (Celery beat): raise ``device_offline`` for monitoring devices
that went silent, resolve it for devices that are back or no longer monitor the patient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from django.conf import settings
from django.utils import timezone

from alerts.changes import AlertChanges
from alerts.models import Alert
from alerts.state import last_reading_key, offline_key, redis_client
from alerts.vocabulary import KIND_DEVICE_OFFLINE, Priority
from clinical.selectors import devices_assignment, devices_monitoring
from ctg.analysis import duration_text


def alarms_offline_scan(*, now: datetime | None = None) -> list[Alert]:
    """Raise device_offline (low) for monitoring devices that sent no reading for
    DEVICE_OFFLINE_SECONDS; resolve it for devices that are back (a backstop to the fast path
    in ``alarms_evaluate``) or no longer monitor that patient.

    A device's last reading time comes from Redis (written by ``alarms_evaluate``); a device
    with none there (never sent a reading since Redis started) falls back to its
    ``last_seen_at`` connection presence. Devices never seen at all raise nothing.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.DEVICE_OFFLINE_SECONDS)
    changes = AlertChanges(at=now)
    client = redis_client()

    open_offline = dict(
        Alert.objects.filter(kind=KIND_DEVICE_OFFLINE)
        .exclude(state=Alert.State.RESOLVED)
        .values_list("patient_id", "device_id")
    )
    assignments = devices_assignment(device_ids=[d for d in open_offline.values() if d])
    for patient_id, device_id in list(open_offline.items()):
        assigned_to, _token, is_active = assignments.get(device_id, (None, "", False))
        if is_active and assigned_to == patient_id:
            continue  # still the patient's monitor: the scan below decides
        _offline_resolve(changes, patient_id, note="The device no longer monitors this patient.")
        del open_offline[patient_id]

    devices = devices_monitoring()
    if not devices:
        return changes.alerts
    # redis-py types a reply as ``Awaitable | Any`` (shared with its asyncio client).
    scores = cast(
        "list[float | None]", client.zmscore(last_reading_key(), [str(row[0]) for row in devices])
    )
    for (device_id, patient_id, serial, last_seen_at), score in zip(devices, scores, strict=True):
        has_open = patient_id in open_offline
        if score is not None:
            last = datetime.fromtimestamp(score, tz=UTC)
        elif last_seen_at is not None:
            last = last_seen_at
        else:
            continue  # never seen: not monitoring yet
        online = last >= cutoff
        if has_open and online:
            _offline_resolve(changes, patient_id, note="The device is sending readings again.")
        elif not has_open and not online:
            silent = (now - last).total_seconds()
            alert = changes.raise_alert(
                patient_id=patient_id,
                device_id=device_id,
                kind=KIND_DEVICE_OFFLINE,
                priority=Priority.LOW,
                message=f"Device offline: no reading from {serial} for {duration_text(silent)}.",
            )
            client.set(offline_key(patient_id), alert.id)
    return changes.alerts


def _offline_resolve(changes: AlertChanges, patient_id: int, *, note: str) -> None:
    """Resolve the patient's device_offline alert and forget that it was open."""
    changes.resolve(patient_id=patient_id, kind=KIND_DEVICE_OFFLINE, note=note)
    redis_client().delete(offline_key(patient_id))
