"""``GET /fhir/AuditEvent``: the access audit trail as FHIR R4 AuditEvent resources shaped as
IHE Basic Audit Log Patterns (BALP) describes them, for administrators.

Search parameters: ``patient`` (``<id>`` or ``Patient/<id>``), ``date`` (on ``recorded``, with
the usual prefixes), ``agent`` (a user id, ``Practitioner/<id>`` style references accepted, or
``Device/<id>``), ``action`` (``C``, ``R``, ``U``, ``D``, ``E`` or this server's action names),
``_count`` and the ``_cursor`` of a ``next`` link. Newest first.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import Action, ActorType, AuditRecord, Outcome
from audit.selectors import audit_records
from fhir_api import search
from fhir_api.errors import InvalidSearch
from fhir_api.resources import Resource, instant
from fhir_api.views import FhirView, _time_position
from fhir_api.vocabulary import _system_base

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition"

# Our action -> (FHIR AuditEvent.action, restful-interaction subtype or None)
_ACTIONS: dict[str, tuple[str, str | None]] = {  # keyed by the action's value
    Action.CREATE: ("C", "create"),
    Action.READ: ("R", "read"),
    Action.UPDATE: ("U", "update"),
    Action.DELETE: ("D", "delete"),
    Action.SEARCH: ("E", "search"),
}
_AUTHENTICATION: dict[str, tuple[str, str]] = {
    Action.LOGIN: ("110122", "Login"),
    Action.LOGIN_FAILED: ("110122", "Login"),
    Action.LOCKOUT: ("110122", "Login"),
    Action.LOGOUT: ("110123", "Logout"),
    Action.LOGOUT_ALL: ("110123", "Logout"),
}
_OUTCOMES: dict[str, str] = {
    Outcome.SUCCESS: "0",
    Outcome.REFUSED: "4",
    Outcome.NOT_FOUND: "4",
    Outcome.ERROR: "8",
}
_FHIR_TYPES = {
    "patient": "Patient",
    "device": "Device",
    "observation": "Observation",
    "flag": "Flag",
}
_PROFILES = {
    ("R", True): "IHE.BasicAudit.PatientRead",
    ("E", True): "IHE.BasicAudit.PatientQuery",
    ("C", True): "IHE.BasicAudit.PatientCreate",
    ("U", True): "IHE.BasicAudit.PatientUpdate",
    ("D", True): "IHE.BasicAudit.PatientDelete",
    ("R", False): "IHE.BasicAudit.Read",
    ("E", False): "IHE.BasicAudit.Query",
    ("C", False): "IHE.BasicAudit.Create",
    ("U", False): "IHE.BasicAudit.Update",
    ("D", False): "IHE.BasicAudit.Delete",
}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _agent(record: AuditRecord) -> dict[str, Any]:
    who: dict[str, Any]
    if record.actor_type == ActorType.DEVICE and record.actor_id:
        who = {"reference": f"Device/{record.actor_id}"}
    else:
        value = str(record.actor_id) if record.actor_id else record.actor_label or "unknown"
        who = {"identifier": {"system": f"{_system_base()}/{record.actor_type}", "value": value}}
    if record.actor_label:
        who["display"] = record.actor_label
    agent: dict[str, Any] = {
        "type": {"coding": [_coding(PARTICIPATION, "IRCP", "information recipient")]},
        "who": who,
        "requestor": True,
    }
    if record.actor_role:
        agent["role"] = [{"text": record.actor_role}]
    if record.address:
        agent["network"] = {"address": record.address, "type": "2"}
    return agent


def _entities(record: AuditRecord) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": f"Patient/{patient_id}"},
            "type": _coding(ENTITY_TYPE, "1", "Person"),
            "role": _coding(OBJECT_ROLE, "1", "Patient"),
        }
        for patient_id in record.patient_ids
    ]
    if record.resource_type and record.resource_type != "patient":
        fhir_type = _FHIR_TYPES.get(record.resource_type)
        what: dict[str, Any]
        if fhir_type and record.resource_id.isdigit():
            what = {"reference": f"{fhir_type}/{record.resource_id}"}
        else:
            what = {
                "identifier": {
                    "system": f"{_system_base()}/{record.resource_type}",
                    "value": record.resource_id or record.resource_type,
                }
            }
        entities.append(
            {
                "what": what,
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
            }
        )
    if record.query:
        encoded = urlencode(record.query, doseq=True).encode()
        entities.append(
            {
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "24", "Query"),
                "query": base64.b64encode(encoded).decode("ascii"),
            }
        )
    return entities


def audit_event_resource(record: AuditRecord) -> Resource:
    action, interaction = _ACTIONS.get(record.action, ("E", None))
    if record.action in _AUTHENTICATION:
        code, display = _AUTHENTICATION[record.action]
        event_type = _coding(DICOM, "110114", "User Authentication")
        subtype = [_coding(DICOM, code, display)]
    elif record.action == Action.EXPORT:
        event_type, subtype = _coding(DICOM, "110106", "Export"), []
    elif record.action == Action.RECEIVE:
        event_type, subtype = _coding(DICOM, "110107", "Import"), []
    else:
        event_type = _coding(EVENT_TYPE, "rest", "RESTful Operation")
        subtype = [_coding(INTERACTION, interaction)] if interaction else []
    resource: Resource = {"resourceType": "AuditEvent", "id": str(record.pk)}
    profile = _PROFILES.get((action, bool(record.patient_ids))) if interaction else None
    if profile:
        resource["meta"] = {"profile": [f"{BALP}/{profile}"]}
    resource["type"] = event_type
    if subtype:
        resource["subtype"] = subtype
    resource.update(
        {
            "action": action,
            "recorded": instant(record.at),
            "outcome": _OUTCOMES.get(record.outcome, "8"),
            "outcomeDesc": f"{record.action} {record.outcome}",
            "agent": [_agent(record)],
            "source": {
                "site": record.channel,
                "observer": {"display": "Patient Monitor"},
                "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
            },
        }
    )
    entities = _entities(record)
    if entities:
        resource["entity"] = entities
    if record.request_id:
        resource["extension"] = [
            {"url": f"{_system_base()}/request-id", "valueString": record.request_id}
        ]
    return resource


class IsAdministrator(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(getattr(request.user, "is_admin", False))


def _one_id(raw: str, name: str, resource_type: str) -> int:
    return search.reference_id_parse(raw, name, resource_type)


def _actions(raw: str) -> list[str]:
    by_code: dict[str, list[str]] = {}
    for ours, (code, _) in _ACTIONS.items():
        by_code.setdefault(code, []).append(ours)
    if raw in by_code:
        found = by_code[raw]
        return found + [a for a in Action.values if a not in _ACTIONS] if raw == "E" else found
    if raw in Action.values:
        return [raw]
    raise InvalidSearch(f"action: unknown code {raw!r} (C, R, U, D, E or an audit action).")


class AuditEventSearchView(FhirView):
    permission_classes = [IsAdministrator]

    def get(self, request: Request) -> Response:
        query = self.search_query(request, {"patient", "date", "agent", "action"})
        count = search.count_parse(query)
        after = _time_position(query)
        records: QuerySet[AuditRecord] = audit_records()
        for raw in query.getlist("patient"):
            patient = _one_id(raw, "patient", "Patient")
            records = records.filter(Q(patient_id=patient) | Q(patients__contains=f",{patient},"))
        for values in search.values_of(query, "date"):
            q = Q()
            for raw in values:
                q |= search.date_bound_q(search.date_parse(raw, "date"), "at")
            records = records.filter(q)
        for raw in query.getlist("agent"):
            if raw.startswith("Device/"):
                records = records.filter(
                    actor_type=ActorType.DEVICE, actor_id=_one_id(raw, "agent", "Device")
                )
            else:
                agent = search.id_parse(raw.rsplit("/", 1)[-1])
                if agent is None:
                    raise InvalidSearch("agent: a user id, or Device/<id>.")
                records = records.filter(actor_type=ActorType.USER, actor_id=agent)
        for values in search.values_of(query, "action"):
            records = records.filter(action__in=[a for raw in values for a in _actions(raw)])
        matched = records
        if after is not None:
            at, last_id = after
            records = records.filter(Q(at__lt=at) | Q(at=at, id__lt=last_id))
        page = records.order_by("-at", "-id")
        return self.searchset(
            request,
            query,
            rows=lambda: list(page[: count + 1]),
            count=count,
            render=lambda rows: [audit_event_resource(r) for r in rows],
            position=lambda record: [record.at.isoformat(), record.id],
            total=matched.count,
            total_by_default=False,  # the trail is long: counted on request
        )
