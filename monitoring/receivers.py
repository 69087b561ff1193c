"""What the live channels listen to in lower apps: a changed device and ended sessions close
their open connections at once (the signals are sent after commit)."""

from __future__ import annotations

from typing import Any

from monitoring.live.groups import device_group, user_group
from monitoring.live.publish import live_publish


def device_changed_recheck(*, device_id: int, **_: Any) -> None:
    """The device's open connection re-checks itself and closes with the fitting code."""
    live_publish([(device_group(device_id), {"type": "device.changed"})])


def user_sessions_close(*, user_id: int, **_: Any) -> None:
    """The person's open dashboards close with 4401."""
    live_publish([(user_group(user_id), {"type": "session.end"})])
