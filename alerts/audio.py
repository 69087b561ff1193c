"""Alarm audio of a ward's central station (IEC 60601-1-8): "audio paused" for a limited time.

A pause silences the ward's alarm sound on every dashboard watching the ward for the place's
``alarm_audio_pause_seconds`` (default 2 minutes); the sound comes back when it ends, when
someone resumes, or when a new high-priority alarm is raised in the ward. "Audio off" (no end)
is for admins only and stays visible on every dashboard until someone resumes. Every pause is
kept (``AlarmAudioPause``: who, when, how long, how it ended): the audit trail.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from alerts.models import AlarmAudioPause
from clinical.models import Ward
from clinical.selectors import wards_visible
from common.errors import NotFound, PermissionDenied
from monitoring.live.groups import ward_group
from monitoring.live.publish import live_publish

logger = logging.getLogger(__name__)

Mode = AlarmAudioPause.Mode
End = AlarmAudioPause.End


def ward_audio_get(*, user: User, ward_id: int) -> Ward:
    ward = wards_visible(user=user).select_related("place").filter(pk=ward_id).first()
    if ward is None:
        raise NotFound("No such ward.")
    return ward


def _current(ward_id: int, now: datetime) -> QuerySet[AlarmAudioPause]:
    return AlarmAudioPause.objects.filter(ward_id=ward_id, ended_at__isnull=True).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    )


def alarm_audio_state(*, ward: Ward, now: datetime | None = None) -> dict[str, Any]:
    """``state`` is ``sounding``, ``paused`` (with ``remaining_seconds``) or ``off``."""
    now = now or timezone.now()
    pause = _current(ward.pk, now).select_related("by").first()
    return {
        "ward": ward.pk,
        "state": "sounding" if pause is None else pause.mode,
        "pause_seconds": ward.place.alarm_audio_pause_seconds,
        "pause": None if pause is None else alarm_audio_pause_payload(pause, now=now),
    }


def alarm_audio_pause_payload(pause: AlarmAudioPause, *, now: datetime) -> dict[str, Any]:
    by = pause.by
    remaining = None
    if pause.ends_at is not None:
        remaining = max(0, round((pause.ends_at - now).total_seconds()))
    return {
        "id": pause.pk,
        "mode": pause.mode,
        "by": {"id": by.pk, "name": by.get_full_name() or by.email},
        "started_at": pause.started_at.isoformat(),
        "ends_at": pause.ends_at.isoformat() if pause.ends_at else None,
        "remaining_seconds": remaining,
    }


def _end_current(ward_id: int, *, now: datetime, by: User | None, reason: str) -> int:
    return _current(ward_id, now).update(ended_at=now, ended_by=by, end_reason=reason)


def _publish_on_commit(ward: Ward) -> None:
    def publish() -> None:
        event = {"type": "audio.state", **alarm_audio_state(ward=ward)}
        try:
            live_publish([(ward_group(ward.pk), event)])
        except Exception:  # recorded; dashboards read the state when they open the ward
            logger.exception("could not publish the alarm audio state of ward %s", ward.pk)

    transaction.on_commit(publish)


@transaction.atomic
def alarm_audio_pause(*, user: User, ward_id: int, mode: str = Mode.PAUSED) -> dict[str, Any]:
    ward = ward_audio_get(user=user, ward_id=ward_id)
    if mode == Mode.OFF and not user.is_admin:
        raise PermissionDenied(
            "Only an administrator may switch the alarm audio off; pause it instead.",
            code="audio_off_not_allowed",
        )
    now = timezone.now()
    _end_current(ward.pk, now=now, by=user, reason=End.REPLACED)
    seconds = ward.place.alarm_audio_pause_seconds
    AlarmAudioPause.objects.create(
        ward=ward,
        mode=mode,
        by=user,
        started_at=now,
        ends_at=None if mode == Mode.OFF else now + timedelta(seconds=seconds),
    )
    logger.info("alarm audio %s on ward %s by user %s", mode, ward.pk, user.pk)
    _publish_on_commit(ward)
    return alarm_audio_state(ward=ward, now=now)


@transaction.atomic
def alarm_audio_resume(*, user: User, ward_id: int) -> dict[str, Any]:
    ward = ward_audio_get(user=user, ward_id=ward_id)
    now = timezone.now()
    if _end_current(ward.pk, now=now, by=user, reason=End.RESUMED):
        _publish_on_commit(ward)
    return alarm_audio_state(ward=ward, now=now)


def alarm_audio_new_high_alarm(*, ward_id: int | None) -> None:
    """A new high-priority alarm in the ward re-sounds a paused central station (an admin's
    "audio off" stays off: it is shown on every dashboard)."""
    if ward_id is None:
        return
    now = timezone.now()
    ended = (
        _current(ward_id, now)
        .filter(mode=Mode.PAUSED)
        .update(ended_at=now, end_reason=End.NEW_ALARM)
    )
    if ended:
        ward = Ward.objects.select_related("place").get(pk=ward_id)
        _publish_on_commit(ward)


def alarm_audio_history(*, user: User, ward_id: int) -> QuerySet[AlarmAudioPause]:
    ward = ward_audio_get(user=user, ward_id=ward_id)
    return AlarmAudioPause.objects.filter(ward=ward).select_related("by", "ended_by")
