"""What higher apps add to the live dashboard channel, registered in their ``ready()``.

The dashboard channel belongs to monitoring; alerts (a higher app) contributes the open
alerts and the latest CTG classification of each snapshot and the ``alert.ack`` frame
without monitoring importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# name -> extra(patient_ids=...) -> {patient id: value}: each snapshot patient gets
# ``name: value``, or ``name: empty()`` when the extra has nothing for the patient (an empty
# list unless the extra registered another ``empty``, e.g. one object or null).
SnapshotExtra = Callable[..., dict[int, Any]]
snapshot_extras: dict[str, tuple[SnapshotExtra, Callable[[], Any]]] = {}

# frame type -> handler(user=..., frame=...) -> reply frame. Runs in a worker thread (it may
# use the ORM); raising ``ApplicationError`` answers an error frame naming ``reply_key``.
FrameHandler = Callable[..., dict[str, Any]]
dashboard_frames: dict[str, tuple[FrameHandler, str]] = {}


def snapshot_extra_register(
    name: str, extra: SnapshotExtra, *, empty: Callable[[], Any] = list
) -> None:
    snapshot_extras[name] = (extra, empty)


def dashboard_frame_register(kind: str, handler: FrameHandler, *, reply_key: str) -> None:
    dashboard_frames[kind] = (handler, reply_key)
