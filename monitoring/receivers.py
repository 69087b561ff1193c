"""What the live channels listen to in lower apps: a changed device and ended sessions close
their open connections at once; an admitted, moved, updated or discharged patient is shown to
the dashboards of their ward (the signals are sent after commit)."""

from __future__ import annotations

from typing import Any

from clinical.signals import PatientChanged
from monitoring.live.events import patient_events
from monitoring.live.groups import device_group, user_group
from monitoring.live.publish import live_publish
from monitoring.snapshot import dashboard_snapshot


def device_changed_recheck(*, device_id: int, **_: Any) -> None:
    """The device's open connection re-checks itself and closes with the fitting code."""
    live_publish([(device_group(device_id), {"type": "device.changed"})])


def user_sessions_close(*, user_id: int, session_id: str | None = None, **_: Any) -> None:
    """The person's open dashboards (only those of ``session_id``, when given) close with
    4401."""
    event: dict[str, Any] = {"type": "session.end"}
    if session_id:
        event["session"] = session_id
    live_publish([(user_group(user_id), event)])


def patient_changed_publish(*, change: PatientChanged, **_: Any) -> None:
    """The dashboards of the patient's ward (before and after) and of the patient follow the
    change at once: a tile appears, moves or leaves (a lost broadcast is repaired by the next
    snapshot, as for every live event)."""
    found = dashboard_snapshot(patient_id=change.patient_id)
    live_publish(patient_events(change=change, entry=found[0] if found else None))
