"""Checks of what the FHIR API emits: the R4 structures (``fhir.resources``' R4B models,
identical to R4 for the resources served here), FHIR JSON's rules, the required value-set
bindings those models leave unchecked, and the R4 vital-signs and heart-rate profiles."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

# Required bindings (R4) of the coded elements this server emits.
_REQUIRED_CODES: dict[tuple[str, str], set[str]] = {
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
    ("Device", "status"): {"active", "inactive", "entered-in-error", "unknown"},
    ("Observation", "status"): {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    ("Flag", "status"): {"active", "inactive", "entered-in-error"},
    ("Bundle", "type"): {"searchset"},
    ("CapabilityStatement", "status"): {"draft", "active", "retired", "unknown"},
    ("CapabilityStatement", "kind"): {"instance", "capability", "requirements"},
    ("OperationOutcome", "severity"): {"fatal", "error", "warning", "information"},
}
_ISSUE_TYPES = {
    "invalid",
    "structure",
    "required",
    "value",
    "invariant",
    "security",
    "login",
    "unknown",
    "expired",
    "forbidden",
    "suppressed",
    "processing",
    "not-supported",
    "duplicate",
    "multiple-matches",
    "not-found",
    "deleted",
    "too-long",
    "code-invalid",
    "extension",
    "too-costly",
    "business-rule",
    "conflict",
    "transient",
    "lock-error",
    "no-store",
    "exception",
    "timeout",
    "incomplete",
    "throttled",
    "informational",
}

VITAL_SIGNS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _json_rules(value: Any, where: str) -> None:
    """FHIR JSON: no nulls, no empty strings, arrays or objects."""
    assert value is not None, f"{where} is null"
    if isinstance(value, str):
        assert value.strip(), f"{where} is an empty string"
    elif isinstance(value, list):
        assert value, f"{where} is an empty array"
        for index, item in enumerate(value):
            _json_rules(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        assert value, f"{where} is an empty object"
        for key, item in value.items():
            _json_rules(item, f"{where}.{key}")


def _codes(resource: dict[str, Any]) -> None:
    kind = resource["resourceType"]
    for (owner, field), allowed in _REQUIRED_CODES.items():
        if owner == kind and field in resource:
            assert resource[field] in allowed, f"{kind}.{field} = {resource[field]!r}"
    if kind == "OperationOutcome":
        for issue in resource["issue"]:
            assert issue["severity"] in _REQUIRED_CODES[("OperationOutcome", "severity")]
            assert issue["code"] in _ISSUE_TYPES, issue["code"]
    if kind == "Bundle":
        for entry in resource.get("entry", []):
            assert entry["search"]["mode"] in {"match", "include", "outcome"}
            _codes(entry["resource"])


def assert_r4(resource: dict[str, Any], resource_type: str | None = None) -> dict[str, Any]:
    """``resource`` is a valid R4 resource (of ``resource_type``); returns it."""
    if resource_type is not None:
        assert resource["resourceType"] == resource_type, resource
    _json_rules(resource, resource["resourceType"])
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    _codes(resource)
    return resource


def assert_vital_signs(observation: dict[str, Any]) -> None:
    """The R4 vital-signs profile: status, the vital-signs category, a code, a Patient
    subject, an effective time and a UCUM quantity."""
    assert_r4(observation, "Observation")
    assert observation["status"] in {"final", "amended", "corrected", "preliminary"}
    assert any(
        c["system"] == VITAL_SIGNS_CATEGORY and c["code"] == "vital-signs"
        for category in observation["category"]
        for c in category["coding"]
    )
    assert observation["subject"]["reference"].startswith("Patient/")
    assert "effectiveDateTime" in observation
    quantity = observation["valueQuantity"]
    assert quantity["system"] == "http://unitsofmeasure.org"
    assert isinstance(quantity["value"], int | float)
    assert quantity["code"]


def assert_heart_rate_profile(observation: dict[str, Any]) -> None:
    """The R4 heart-rate profile: vital signs, LOINC 8867-4, UCUM /min, and it says so."""
    assert_vital_signs(observation)
    assert observation["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/heartrate"]
    assert {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"} in (
        observation["code"]["coding"]
    )
    assert observation["valueQuantity"]["code"] == "/min"
    assert observation["valueQuantity"]["unit"] == "/min"


def assert_outcome(response: Any, status: int, issue: str) -> dict[str, Any]:
    """The response is an OperationOutcome of ``issue`` with HTTP ``status``."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/fhir+json")
    outcome = assert_r4(response.json(), "OperationOutcome")
    assert [i["code"] for i in outcome["issue"]] == [issue], outcome
    assert outcome["issue"][0]["diagnostics"]
    return outcome


def fhir_json(response: Any, resource_type: str) -> dict[str, Any]:
    """A 200 FHIR JSON answer holding a valid R4 ``resource_type``."""
    assert response.status_code == 200, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/fhir+json")
    return assert_r4(response.json(), resource_type)
