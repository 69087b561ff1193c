"""The Django admin half of the audit mechanism: every change the admin saves (an addition, a
change, a deletion, and the admin actions that log a change) is one record, written in the
admin's own transaction with the change, like a REST change recorded by ``audit.middleware``.

The admin logs each change it makes (its ``LogEntry``, the "History" page) through
``ModelAdmin.log_addition``, ``log_change`` and ``log_deletions``; :class:`AuditedAdmin` adds
the audit record there. The project's admin site (``accounts.admin_site``) puts it under every
registered ``ModelAdmin``, ours and the libraries' (second-factor devices, blacklisted tokens),
so no admin has to remember it.

As for REST: the resource is the admin's ``audit_resource`` or the model's name; the patient is
the object itself for a patient, else its ``patient_id``; the detail names the fields the form
changed, with the values of the admin's ``audit_detail_fields`` (a person's role, places and
active flag).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from audit.models import Action, Channel, Outcome
from audit.services import actor_for, audit_record, origin_for_request

# Where ``construct_change_message`` leaves the form's changed fields for the log call that
# follows it in the same request.
_CHANGED = "_audit_changed_fields"


class AuditedAdmin(admin.ModelAdmin):
    # No class defaults for ``audit_resource`` and ``audit_detail_fields``: this class comes
    # first in the MRO of a wrapped admin, and would hide the admin's own.

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        setattr(request, _CHANGED, sorted(getattr(form, "changed_data", ()) or ()))
        return super().construct_change_message(request, form, formsets, add)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)
        self.audit_change(request, obj, Action.CREATE, message)
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        self.audit_change(request, obj, Action.UPDATE, message)
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        objects = list(queryset)  # logged before the deletion, while they still exist
        entries = super().log_deletions(request, queryset)
        for obj in objects:
            self.audit_change(request, obj, Action.DELETE, None)
        return entries

    def audit_change(self, request: HttpRequest, obj: Model, action: str, message: Any) -> None:
        actor = actor_for(getattr(request, "user", None))
        if actor is None:
            return
        resource = getattr(self, "audit_resource", "") or obj._meta.model_name or ""
        patient = obj.pk if resource == "patient" else getattr(obj, "patient_id", None)
        audit_record(
            actor=actor,
            action=action,
            outcome=Outcome.SUCCESS,
            channel=Channel.ADMIN,
            origin=origin_for_request(request),
            resource_type=resource,
            resource_id=obj.pk,
            patient=patient if isinstance(patient, int) else None,
            detail=self._detail(request, obj, action, message),
        )

    def _detail(
        self, request: HttpRequest, obj: Model, action: str, message: Any
    ) -> dict[str, Any] | None:
        if action == Action.DELETE:
            return None
        fields: list[str] = getattr(request, _CHANGED, None) or []
        detail: dict[str, Any] = {}
        if fields:
            detail["fields"] = fields
        elif isinstance(message, str) and message and not message.startswith("["):
            detail["operation"] = message  # an admin action's own words
        for name in getattr(self, "audit_detail_fields", ()):
            if name in fields:
                detail[name] = _plain(getattr(obj, name, None))
        return detail or None


def _plain(value: Any) -> Any:
    """A JSON value of a field (related managers: the sorted ids)."""
    if hasattr(value, "values_list"):
        return sorted(value.values_list("pk", flat=True))
    if isinstance(value, Model):
        return value.pk
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


def audited_admin(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """``admin_class`` recording its changes in the audit trail (itself when it already does)."""
    if issubclass(admin_class, AuditedAdmin):
        return admin_class
    return type(
        admin_class.__name__,
        (AuditedAdmin, admin_class),
        {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__},
    )
