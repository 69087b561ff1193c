"""Signals the accounts app sends; higher apps connect to them in ``ready()``."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after commit when sessions of a person end: ``user_id``, and ``session_id`` when only
# that login session ended (a logout: the ``sid`` claim of its tokens), else every session
# (deactivated, password changed or reset, logged out everywhere, access changed).
user_sessions_ended = Signal()
