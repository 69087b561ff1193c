"""What a dashboard may subscribe to: one entry per kind, saying where the object is, who may
watch it and which group carries its live events. The consumer holds no per-kind branches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accounts.models import User
from clinical.selectors import patient_scope, patients_visible, ward_place_id, wards_visible
from monitoring.live.events import scope_group
from monitoring.live.groups import ward_group

# (place id, ward id) of a watched object
Scope = tuple[int, int | None]


@dataclass(frozen=True, slots=True)
class SubscriptionKind:
    name: str
    # Where the object is, or None when it does not exist.
    locate: Callable[[int], Scope | None]
    # Whether the person may watch it (called again while the session lasts).
    visible: Callable[[User, int], bool]
    # The group that carries its live events, given its id and its scope.
    group: Callable[[int, Scope], str]
    # Whether its scope can change while watched (a patient moves to another ward).
    moves: bool = False


def _ward_locate(ward_id: int) -> Scope | None:
    place_id = ward_place_id(ward_id=ward_id)
    return None if place_id is None else (place_id, ward_id)


SUBSCRIPTION_KINDS: dict[str, SubscriptionKind] = {
    kind.name: kind
    for kind in (
        SubscriptionKind(
            name="ward",
            locate=_ward_locate,
            visible=lambda user, ward_id: wards_visible(user=user).filter(id=ward_id).exists(),
            group=lambda ward_id, scope: ward_group(ward_id),
        ),
        SubscriptionKind(
            name="patient",
            locate=lambda patient_id: patient_scope(patient_id=patient_id),
            visible=lambda user, patient_id: (
                patients_visible(user=user).filter(id=patient_id).exists()
            ),
            # A patient is heard through the group of its ward (see ``scope_group``).
            group=lambda patient_id, scope: scope_group(ward_id=scope[1], patient_id=patient_id),
            moves=True,
        ),
    )
}
