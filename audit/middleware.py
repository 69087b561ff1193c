"""The REST and FHIR half of the audit mechanism: one record per audited request.

Like HAPI FHIR's BALP interceptor, the views themselves record nothing. This middleware
resolves the request's route to a *target* (resource type and action), lets the view run, and
records the outcome from the response: 2xx success, 404 not_found, other 4xx refused, 5xx
error. Changes (POST, PUT, PATCH, DELETE) run inside one transaction with their record, so a
change that committed has its record; reads are recorded before the response leaves.

What a route is, without a line in the view:
- a DRF viewset: its router ``basename`` is the resource, its action (list, retrieve, ...)
  the audit action (search, read, ...); a view may rename actions in ``audit_actions``;
- another DRF view: its ``audit_resource`` (and optional ``audit_action``, or
  ``audit_actions`` per method; ``audit_patient_kwarg`` and ``audit_id_kwarg`` name the URL
  arguments holding the patient and the resource id);
- a URL namespace with its own naming (FHIR) registers a resolver
  (``audit_routes_register``) in its app's ``ready()``.
Views without a resource (login, schema, health, metrics, static files) record nothing here;
the account services record logins and logouts themselves. ``audit_reads = False`` on a view
leaves its reads out (places and wards: no patient data), its changes still recorded.
A caller that could not be identified (401) is not recorded: nothing was accessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, resolve

from audit.models import Action, Channel, Outcome
from audit.services import actor_for, audit_record, origin_for_request
from common.filters import INT64_MAX

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD"})
VIEWSET_ACTIONS = {
    "list": Action.SEARCH,
    "retrieve": Action.READ,
    "create": Action.CREATE,
    "update": Action.UPDATE,
    "partial_update": Action.UPDATE,
    "destroy": Action.DELETE,
}
METHOD_ACTIONS = {
    "GET": Action.READ,
    "HEAD": Action.READ,
    "POST": Action.CREATE,
    "PUT": Action.UPDATE,
    "PATCH": Action.UPDATE,
    "DELETE": Action.DELETE,
}


@dataclass(frozen=True, slots=True)
class Target:
    resource: str
    action: str
    channel: str
    view_class: type | None = None
    # A named operation beyond create/read/update/delete (acknowledge, discharge, pause).
    operation: str | None = None


NamespaceResolver = Callable[[ResolverMatch, str], Target | None]
_namespaces: dict[str, NamespaceResolver] = {}


def audit_routes_register(namespace: str, resolver: NamespaceResolver) -> None:
    """Routes of ``namespace`` are audited as ``resolver(match, method)`` says."""
    _namespaces[namespace] = resolver


def route_target(match: ResolverMatch, method: str) -> Target | None:
    if method not in METHOD_ACTIONS:
        return None
    if match.namespace in _namespaces:
        return _namespaces[match.namespace](match, method)
    func = match.func
    cls = getattr(func, "cls", None)
    if cls is None:
        return None  # not a DRF view (admin, dashboard page, health, metrics)
    if method in SAFE_METHODS and not getattr(cls, "audit_reads", True):
        return None
    actions: dict[str, str] | None = getattr(func, "actions", None)
    if actions:
        name = actions.get(method.lower())
        if name is None:
            return None  # 405: nothing was attempted
        resource = getattr(cls, "audit_resource", None) or getattr(func, "initkwargs", {}).get(
            "basename"
        )
        action = (
            getattr(cls, "audit_actions", {}).get(name)
            or VIEWSET_ACTIONS.get(name)
            or (Action.READ if method in SAFE_METHODS else Action.UPDATE)
        )
        operation = None if name in VIEWSET_ACTIONS else name
    else:
        resource = getattr(cls, "audit_resource", None)
        action = (
            getattr(cls, "audit_actions", {}).get(method)
            or getattr(cls, "audit_action", None)
            or METHOD_ACTIONS[method]
        )
        operation = getattr(cls, "audit_operation", None)
    if not resource:
        return None
    return Target(
        resource=resource,
        action=action,
        channel=Channel.REST,
        view_class=cls,
        operation=operation,
    )


def outcome_for(status: int) -> str:
    if status < 400:
        return Outcome.SUCCESS
    if status == 404:
        return Outcome.NOT_FOUND
    if status < 500:
        return Outcome.REFUSED
    return Outcome.ERROR


def _int(value: Any) -> int | None:
    if isinstance(value, dict):  # a FHIR Reference
        value = value.get("reference")
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.rsplit("/", 1)[-1]  # "Patient/12" as well as "12"
        value = int(text) if text.isdigit() and len(text) < 20 else None
    if isinstance(value, int) and 0 < value <= INT64_MAX:
        return value
    return None


def _query(request: HttpRequest) -> dict[str, Any] | None:
    if not request.GET:
        return None
    return {k: v[0] if len(v) == 1 else v for k, v in request.GET.lists()}


def _identify(
    target: Target, match: ResolverMatch, request: HttpRequest, response: HttpResponseBase
) -> tuple[str | None, int | None]:
    """The resource id and the patient the request was about."""
    kwargs = match.kwargs
    cls = target.view_class
    data = getattr(response, "data", None)
    data = data if isinstance(data, dict) and response.status_code < 400 else {}
    id_kwarg = getattr(cls, "audit_id_kwarg", None)
    patient_kwarg = getattr(cls, "audit_patient_kwarg", None) or "patient_id"
    if id_kwarg:
        resource_id = kwargs.get(id_kwarg)
    else:
        resource_id = kwargs.get("pk", kwargs.get("id")) if patient_kwarg != "pk" else None
    if resource_id is None and target.action == Action.CREATE:
        resource_id = data.get("id")
    if target.resource == "patient":
        patient = _int(resource_id)
    elif patient_kwarg in kwargs:
        patient = _int(kwargs[patient_kwarg])
        resource_id = resource_id if resource_id is not None else kwargs[patient_kwarg]
    else:
        patient = _int(data.get("patient")) or _int(data.get("subject"))
        if patient is None and target.action == Action.SEARCH:
            patient = _int(request.GET.get("patient") or request.GET.get("subject"))
        if patient is None and target.action not in (Action.READ, Action.SEARCH):
            body = _body(response)
            device = getattr(getattr(request, "user", None), "device", None)
            patient = _int(body.get("patient")) if isinstance(body, dict) else None
            patient = patient or getattr(device, "patient_id", None)
    return (None if resource_id is None else str(resource_id)), patient


def _body(response: HttpResponseBase) -> Any:
    """The parsed request body of a DRF view (None elsewhere)."""
    drf_request = (getattr(response, "renderer_context", None) or {}).get("request")
    if drf_request is None:
        return None
    try:
        return drf_request.data
    except Exception:  # an unparseable body (the view answered 400): no fields to name
        return None


def _detail(target: Target, response: HttpResponseBase) -> dict[str, Any] | None:
    """For a change: the fields it set (names only, values for the view's
    ``audit_detail_fields``: a user's role, places and active flag)."""
    if target.action in (Action.READ, Action.SEARCH):
        return None
    detail: dict[str, Any] = {"operation": target.operation} if target.operation else {}
    body = _body(response)
    if not isinstance(body, dict) or not body:
        return detail or None
    shown = set(getattr(target.view_class, "audit_detail_fields", ()))
    detail["fields"] = sorted(str(key) for key in body)
    for key in sorted(shown & set(body)):
        value = body[key]
        detail[key] = value if isinstance(value, (str, int, bool, list, type(None))) else str(value)
    return detail


def _record(
    request: HttpRequest, response: HttpResponseBase, target: Target, match: ResolverMatch
) -> None:
    actor = actor_for(getattr(request, "user", None))
    if actor is None:
        return
    resource_id, patient = _identify(target, match, request, response)
    audit_record(
        actor=actor,
        action=target.action,
        outcome=outcome_for(response.status_code),
        channel=target.channel,
        origin=origin_for_request(request),
        resource_type=target.resource,
        resource_id=resource_id,
        patient=patient,
        query=_query(request),
        detail=_detail(target, response),
    )


def _record_failed(
    request: HttpRequest, response: HttpResponseBase, target: Target, match: ResolverMatch
) -> None:
    """A refused or failed request: recorded if the database takes it (during an outage the
    request failed anyway, and its answer must stay the view's, not a 500)."""
    try:
        _record(request, response, target, match)
    except DatabaseError:
        logger.exception("audit record of a failed %s %s not written", request.method, request.path)


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        target = route_target(match, request.method or "")
        if target is None:
            return self.get_response(request)
        if request.method in SAFE_METHODS:
            response = self.get_response(request)
            if response.status_code < 400:
                _record(request, response, target, match)
            else:
                _record_failed(request, response, target, match)
            return response
        with ExitStack() as stack:
            try:
                stack.enter_context(transaction.atomic())
            except DatabaseError:
                # The database is away: the view answers that its own way (503).
                response = self.get_response(request)
                _record_failed(request, response, target, match)
                return response
            response = self.get_response(request)
            if response.status_code >= 500:
                transaction.set_rollback(True)
            elif response.status_code < 400:
                _record(request, response, target, match)  # commits with the change
        if response.status_code >= 400:
            _record_failed(request, response, target, match)
        return response
