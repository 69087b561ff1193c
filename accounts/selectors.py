from __future__ import annotations

from accounts.models import User


def user_place_ids(user: User) -> set[int] | None:
    """The places a person may see: ``None`` means all (admins)."""
    if user.is_admin:
        return None
    return set(user.places.values_list("id", flat=True))


def user_can_see_place(user: User, place_id: int) -> bool:
    place_ids = user_place_ids(user)
    return place_ids is None or place_id in place_ids
