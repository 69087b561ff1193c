"""Writing the audit trail: the one door every app records through.

Views are recorded by ``audit.middleware`` (one record per request); dashboard consumers, the
HL7 listener and the account services call :func:`audit_record` themselves at the point where
an access is granted or refused. Nothing here ever updates or deletes a record, except the
retention purge (``audit.partitions.audit_purge``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from audit.models import Action, ActorType, AuditRecord, Channel, Outcome
from common.logs import log_context_ids

USER_AGENT_MAX = 256


@dataclass(frozen=True, slots=True)
class Actor:
    """Who: a user (with role), a device, an HL7 sender, or the system."""

    type: str
    id: int | None = None
    role: str = ""
    label: str = ""


SYSTEM = Actor(type=ActorType.SYSTEM)


@dataclass(frozen=True, slots=True)
class Origin:
    """From where: the client address, its user agent, the request id."""

    address: str = ""
    user_agent: str = ""
    request_id: str = ""


def actor_for(principal: Any) -> Actor | None:
    """The actor of an authenticated principal: a person (``accounts.User``) or a device
    principal (anything carrying ``.device``); None for an anonymous caller."""
    if principal is None:
        return None
    device = getattr(principal, "device", None)
    if device is not None:
        return Actor(type=ActorType.DEVICE, id=device.pk, label=str(getattr(device, "serial", "")))
    if getattr(principal, "is_authenticated", False) and getattr(principal, "pk", None):
        role = "admin" if getattr(principal, "is_admin", False) else getattr(principal, "role", "")
        return Actor(
            type=ActorType.USER,
            id=principal.pk,
            role=str(role or ""),
            label=str(getattr(principal, "email", "")),
        )
    return None


def user_actor(*, user_id: int | None, label: str = "", role: str = "") -> Actor:
    """A person named by id or only by the login they typed (a failed login)."""
    return Actor(type=ActorType.USER, id=user_id, role=role, label=label)


def origin_for_request(request: HttpRequest) -> Origin:
    return Origin(
        address=str(request.META.get("REMOTE_ADDR", "") or ""),
        user_agent=str(request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX],
        request_id=str(log_context_ids().get("request_id", "")),
    )


def origin_for_scope(scope: Mapping[str, Any]) -> Origin:
    """A WebSocket connection's origin (ASGI scope: ``client`` and the headers)."""
    client = scope.get("client") or ("", 0)
    headers = dict(scope.get("headers") or ())
    agent = headers.get(b"user-agent", b"").decode("latin-1")
    return Origin(
        address=str(client[0] or ""),
        user_agent=agent[:USER_AGENT_MAX],
        request_id=str(log_context_ids().get("request_id", "")),
    )


def _patients_text(patient: int | None, patients: Iterable[int]) -> str:
    ids = sorted({int(p) for p in patients} | ({int(patient)} if patient is not None else set()))
    return f",{','.join(map(str, ids))}," if ids else ""


def audit_record(
    *,
    actor: Actor,
    action: str,
    outcome: str,
    channel: str,
    origin: Origin | None = None,
    resource_type: str = "",
    resource_id: Any = None,
    patient: int | None = None,
    patients: Iterable[int] = (),
    query: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditRecord:
    """Insert one record in the caller's transaction (a change and its record commit or roll
    back together). ``patients`` names every patient a snapshot showed; ``patient`` the one
    patient the access was about (the only one of ``patients``, when there is one)."""
    patient_list = sorted({int(p) for p in patients})
    if patient is None and len(patient_list) == 1:
        patient = patient_list[0]
    origin = origin or Origin(request_id=str(log_context_ids().get("request_id", "")))
    return AuditRecord.objects.create(
        at=at or timezone.now(),
        actor_type=actor.type,
        actor_id=actor.id,
        actor_role=actor.role,
        actor_label=actor.label[:254],
        address=origin.address[:64],
        user_agent=origin.user_agent[:USER_AGENT_MAX],
        request_id=origin.request_id[:128],
        channel=channel,
        action=action,
        resource_type=resource_type,
        resource_id="" if resource_id is None else str(resource_id)[:64],
        patient_id=patient,
        patients=_patients_text(patient, patient_list),
        outcome=outcome,
        query=dict(query) if query else None,
        detail=dict(detail) if detail else None,
    )


def audit_subscription(
    *,
    user: Any,
    scope: Mapping[str, Any],
    resource_type: str,
    resource_id: int,
    patients: Iterable[int] = (),
    found: bool = True,
) -> None:
    """A dashboard subscription: its snapshot is one ``read`` naming every patient it showed
    (the live frames that follow are not recorded one by one); a refused one ``not_found``."""
    actor = actor_for(user)
    if actor is None:
        return
    audit_record(
        actor=actor,
        action=Action.READ,
        outcome=Outcome.SUCCESS if found else Outcome.NOT_FOUND,
        channel=Channel.WS,
        origin=origin_for_scope(scope),
        resource_type=resource_type,
        resource_id=resource_id,
        patient=resource_id if resource_type == "patient" else None,
        patients=patients,
    )
