"""Reads of people."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import Role, User


def user_place_ids(user: User) -> set[int] | None:
    """The places a person may see: ``None`` means all (admins)."""
    if user.is_admin:
        return None
    return set(user.places.values_list("id", flat=True))


def users_active(*, roles: Iterable[str] | None = None) -> QuerySet[User]:
    """Active people, optionally only those with one of ``roles``."""
    users = User.objects.filter(is_active=True)
    return users if roles is None else users.filter(role__in=list(roles))


def users_admin() -> QuerySet[User]:
    """Active administrators (by role or as superusers)."""
    return User.objects.filter(is_active=True).filter(Q(role=Role.ADMIN) | Q(is_superuser=True))


def place_model() -> Any:
    """The model of the places a person belongs to.

    A higher app (clinical) declares places and the membership relation (``user.places`` is
    its reverse side), so accounts follows the relation instead of importing the model."""
    return User._meta.get_field("places").related_model
