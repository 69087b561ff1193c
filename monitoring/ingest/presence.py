"""Device presence: which devices hold a live connection to some server process, and when
each was last seen. Each process keeps its own connections' presence (``Presence``) and
writes it every ``PRESENCE_INTERVAL`` seconds in one bulk UPDATE and one Redis call (skipped while Redis is
away: ``devices_online`` then falls back to ``last_seen_at``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import close_old_connections, connection
from django.utils import timezone

from clinical.selectors import devices_assignment
from clinical.services import devices_seen
from common.redis_errors import REDIS_ERRORS

logger = logging.getLogger(__name__)

PRESENCE_INTERVAL = 5.0  # seconds between bulk last_seen_at updates and presence refreshes
_PRESENCE_KEY = "device-online:{}"


def presence_key(device_id: int) -> str:
    return _PRESENCE_KEY.format(device_id)


def devices_online(
    device_ids: Iterable[int], *, last_seen: Mapping[int, datetime | None] | None = None
) -> set[int]:
    """Which of these devices hold a live connection to some server process (one Redis call).

    While Redis is away the presence keys cannot be read: then a device counts as online when
    ``last_seen`` (its ``last_seen_at``, which every process writes to the database every
    ``PRESENCE_INTERVAL`` for its connected devices) is within the presence keys' lifetime."""
    ids = list(device_ids)
    if not ids:
        return set()
    try:
        found = cache.get_many([presence_key(i) for i in ids])
    except REDIS_ERRORS as exc:
        logger.warning("presence unreadable (%r): online from last_seen_at", exc)
        horizon = timezone.now() - timedelta(seconds=presence_ttl())
        seen = last_seen or {}
        return {i for i in ids if (at := seen.get(i)) is not None and at >= horizon}
    return {i for i in ids if presence_key(i) in found}


def presence_ttl() -> int:
    return int(PRESENCE_INTERVAL * 3) + 1


@dataclass(slots=True)
class Presence:
    seen: dict[int, float] = field(default_factory=dict)  # device id -> time.time() seen
    connected: dict[int, int] = field(default_factory=dict)  # device id -> connection count
    gone: set[int] = field(default_factory=set)
    last_flush: float = 0.0
    # device id -> (patient id, token hash) its connection streams for; checked against the
    # database on every presence write so a reassigned, deactivated or re-keyed device is
    # told within PRESENCE_INTERVAL even if nobody sent it ``device.changed``.
    expected: dict[int, tuple[int, str]] = field(default_factory=dict)


def presence_write(
    seen: dict[int, float],
    connected: set[int],
    gone: set[int],
    expected: dict[int, tuple[int, str]] | None = None,
    *,
    keys: bool = True,
) -> list[int]:
    """Returns the connected devices whose assignment, state or token changed. ``keys``: also
    refresh the presence keys in Redis (skipped while it is known to be away)."""
    close_old_connections()
    now = timezone.now()
    # One UPDATE for every device seen (readings or connection) since the last write; the
    # timestamp is at most PRESENCE_INTERVAL old, good enough for "last seen".
    ids = sorted(set(seen) | connected)
    if keys:
        presence_keys_write(connected, gone)
    try:
        if ids:
            devices_seen(device_ids=ids, at=now)
        if expected:
            current = {
                device_id: (patient_id, token_hash) if is_active else None
                for device_id, (patient_id, token_hash, is_active) in devices_assignment(
                    device_ids=expected
                ).items()
            }
            return [i for i, wanted in expected.items() if current.get(i) != wanted]
    except Exception:
        connection.close()
        logger.exception("presence update failed")
    return []


def presence_keys_write(connected: set[int], gone: set[int]) -> bool:
    """Refresh the presence keys (Redis); False when Redis is away. The database's
    ``last_seen_at`` is written regardless, and :func:`devices_online` falls back to it."""
    try:
        if connected:
            cache.set_many({presence_key(i): 1 for i in connected}, timeout=presence_ttl())
        offline = gone - connected
        if offline:
            cache.delete_many([presence_key(i) for i in offline])
    except REDIS_ERRORS as exc:
        logger.warning("presence keys not written: Redis is unavailable (%r)", exc)
        return False
    return True
