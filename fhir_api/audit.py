"""How the audit trail names FHIR interactions: ``<type>`` routes are reads, ``<type>-search``
routes searches (fhir_api/urls.py); the CapabilityStatement and unknown paths are not audited."""

from __future__ import annotations

from django.urls import ResolverMatch

from audit.middleware import Target
from audit.models import Action, Channel

NOT_AUDITED = frozenset({"metadata", "unknown"})


def fhir_audit_target(match: ResolverMatch, method: str) -> Target | None:
    name = match.url_name or ""
    if method not in ("GET", "HEAD") or name in NOT_AUDITED:
        return None
    resource, _, kind = name.partition("-")
    return Target(
        resource=resource,
        action=Action.SEARCH if kind == "search" else Action.READ,
        channel=Channel.FHIR,
        view_class=getattr(match.func, "cls", None),
    )
