"""Signals the clinical app sends; higher apps connect to them in ``ready()``."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after commit when a device was deactivated, re-keyed, reassigned or otherwise changed:
# ``device_id``. Its open connection re-checks itself and closes with the fitting code.
device_changed = Signal()
