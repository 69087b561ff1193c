"""Signals the accounts app sends; higher apps connect to them in ``ready()``."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after commit when every session of a person ends (deactivated): ``user_id``.
user_sessions_ended = Signal()
