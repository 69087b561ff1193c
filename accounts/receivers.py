"""Receivers of signals from outside the app (django-axes)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import User
from audit.models import Action, Channel, Outcome
from audit.services import audit_record, origin_for_request, user_actor


def lockout_record(
    sender: Any, request: HttpRequest | None = None, username: str | None = None, **kwargs: Any
) -> None:
    """django-axes locked an account out (for this client address): an audit record."""
    user = User.objects.filter(email__iexact=username or "").first() if username else None
    audit_record(
        actor=user_actor(
            user_id=user.pk if user else None,
            label=username or "",
            role=user.role if user else "",
        ),
        action=Action.LOCKOUT,
        outcome=Outcome.REFUSED,
        channel=Channel.REST,
        origin=origin_for_request(request) if request is not None else None,
        resource_type="user",
        resource_id=user.pk if user else None,
    )
