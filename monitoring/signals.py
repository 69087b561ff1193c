"""Signals the monitoring app sends; higher apps connect to them in ``ready()``."""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

# Sent after readings were stored (``stored``: a list of ``monitoring.ingest.StoredReading``),
# on both ingest paths, through ``readings_stored_send``. Storage and acks never wait for it.
readings_stored = Signal()


def readings_stored_send(*, stored: list[Any]) -> None:
    """Announce stored readings; a receiver that fails is logged (by Django, with its
    traceback) and changes nothing here."""
    readings_stored.send_robust(sender=None, stored=stored)
