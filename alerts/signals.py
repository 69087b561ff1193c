"""Signals the alerts app sends; higher apps (delivery) connect to them in ``ready()``."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after an alert transition committed: ``alert`` (Alert), ``event`` (AlertEvent).
alert_changed = Signal()
