"""Device presence: which devices hold a live connection to some server process, and when
each was last seen. Each process keeps its own connections' presence (``Presence``) and
writes it every ``PRESENCE_INTERVAL`` seconds in one bulk UPDATE and one Redis call."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import close_old_connections, connection
from django.utils import timezone

from clinical.selectors import devices_assignment
from clinical.services import devices_seen

logger = logging.getLogger(__name__)

PRESENCE_INTERVAL = 5.0  # seconds between bulk last_seen_at updates and presence refreshes
_PRESENCE_KEY = "device-online:{}"


def presence_key(device_id: int) -> str:
    return _PRESENCE_KEY.format(device_id)


def devices_online(device_ids: Iterable[int]) -> set[int]:
    """Which of these devices hold a live connection to some server process (one Redis call)."""
    ids = list(device_ids)
    if not ids:
        return set()
    found = cache.get_many([presence_key(i) for i in ids])
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
) -> list[int]:
    """Returns the connected devices whose assignment, state or token changed."""
    close_old_connections()
    now = timezone.now()
    # One UPDATE for every device seen (readings or connection) since the last write; the
    # timestamp is at most PRESENCE_INTERVAL old, good enough for "last seen".
    ids = sorted(set(seen) | connected)
    try:
        if ids:
            devices_seen(device_ids=ids, at=now)
        if connected:
            cache.set_many({presence_key(i): 1 for i in connected}, timeout=presence_ttl())
        offline = gone - connected
        if offline:
            cache.delete_many([presence_key(i) for i in offline])
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
