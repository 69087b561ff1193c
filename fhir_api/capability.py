"""The CapabilityStatement of ``GET /fhir/metadata``: what this server answers."""

from __future__ import annotations

from typing import Any

from fhir_api import vocabulary as v
from fhir_api.resources import Resource

# When this statement last changed (CapabilityStatement.date is required).
STATEMENT_DATE = "2026-12-01"

_COUNT_DOC = "Page size (default 100, at most 1000); pages follow the Bundle's next link."


def _param(name: str, kind: str, documentation: str) -> dict[str, str]:
    return {"name": name, "type": kind, "documentation": documentation}


# The patient search parameter, which most resources take.
_PATIENT = _param("patient", "reference", "`<id>` or `Patient/<id>`.")
_PATIENT_REQUIRED = _param("patient", "reference", "Required: `<id>` or `Patient/<id>`.")

_TOTAL_DOC = "none | estimate | accurate: whether the Bundle carries `total`."
_SUMMARY_DOC = "`count`: the Bundle's `total` alone, no entries (as `_count=0`)."


def _resource(
    kind: str,
    *,
    search: list[dict[str, str]] | None = None,
    total: str = "",
    read: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    interactions = ([{"code": "read"}] if read else []) + (
        [{"code": "search-type"}] if search else []
    )
    resource: dict[str, Any] = {"type": kind, "interaction": interactions, **extra}
    if search:
        resource["searchParam"] = [
            *search,
            _param("_count", "number", _COUNT_DOC),
            _param("_summary", "token", _SUMMARY_DOC),
            _param("_total", "token", f"{_TOTAL_DOC} {total}".strip()),
        ]
    return resource


def capability_statement(*, base_url: str) -> Resource:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STATEMENT_DATE,
        "publisher": "Patient Monitoring Server",
        "kind": "instance",
        "software": {"name": "Patient Monitoring Server"},
        "implementation": {
            "description": "Vital signs recorded by bedside monitors, read-only.",
            "url": base_url,
        },
        "fhirVersion": v.FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Read-only. Every interaction but metadata needs "
                    "`Authorization: Bearer <access JWT>` from POST /api/auth/login/; a caller "
                    "sees the patients, devices, observations and flags of their places "
                    "(administrators: all). Unknown search parameters are refused (400), or "
                    "ignored with `Prefer: handling=lenient` (the Bundle's self link shows the "
                    "parameters used)."
                ),
                "security": {
                    "description": "Bearer JWT (RFC 6750) issued by POST /api/auth/login/."
                },
                "resource": [
                    _resource(
                        "Patient",
                        total="Given by default.",
                        search=[
                            _param(
                                "identifier",
                                "token",
                                "The MRN: `<mrn>` (any place) or `<system>|<mrn>`.",
                            ),
                            _param(
                                "name", "string", "A part of the name that starts so, any case."
                            ),
                            _param(
                                "birthdate",
                                "date",
                                "Date of birth, with prefixes eq ne gt lt ge le sa eb.",
                            ),
                        ],
                    ),
                    _resource(
                        "Device",
                        total="Given by default.",
                        search=[
                            _PATIENT,
                            _param(
                                "identifier",
                                "token",
                                "The serial: `<serial>` or `<system>|<serial>`.",
                            ),
                        ],
                    ),
                    _resource(
                        "Observation",
                        supportedProfile=[v.PROFILE_HEART_RATE, v.PROFILE_VITAL_SIGNS],
                        searchInclude=[
                            "Observation:patient",
                            "Observation:subject",
                            "Observation:device",
                        ],
                        total="Given when asked (`_total=accurate`, `_summary=count`).",
                        search=[
                            _PATIENT_REQUIRED,
                            _param("subject", "reference", "`Patient/<id>` (as patient)."),
                            _param(
                                "code",
                                "token",
                                "`http://loinc.org|8867-4` (or MDC `147842`): ECG heart rate; "
                                "`http://loinc.org|8889-8` (or MDC `149530`): pulse rate "
                                "(oximeter); `http://loinc.org|55283-6`: fetal heart rate.",
                            ),
                            _param("category", "token", "`vital-signs` (all observations)."),
                            _param(
                                "date",
                                "date",
                                "effectiveDateTime, with prefixes eq ne gt lt ge le sa eb.",
                            ),
                            _param(
                                "_lastUpdated",
                                "date",
                                "meta.lastUpdated (when the reading was stored), same prefixes.",
                            ),
                            _param("_sort", "string", "`-date` only (newest first)."),
                        ],
                    ),
                    _resource(
                        "Flag",
                        total="Given by default.",
                        search=[
                            _PATIENT_REQUIRED,
                            _param("status", "token", "`active` or `inactive`."),
                        ],
                    ),
                    _resource(
                        "AuditEvent",
                        read=False,
                        total="Given when asked.",
                        documentation="The access audit trail: administrators only.",
                        search=[
                            _PATIENT,
                            _param("date", "date", "When, with prefixes."),
                            _param("agent", "reference", "A user id, or `Device/<id>`."),
                            _param("action", "token", "C R U D E, or an audit action."),
                        ],
                    ),
                ],
            }
        ],
    }
