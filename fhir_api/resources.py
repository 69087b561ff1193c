"""FHIR R4 resources of the project's entities, as JSON-ready dicts: one function per
resource, used by every FHIR endpoint (reads and search entries alike)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from alerts.models import Alert
from alerts.vocabulary import OPEN_STATES, Priority
from clinical.models import Device, Patient
from fhir_api import vocabulary as v
from monitoring.models import Reading

Resource = dict[str, Any]

_GENDER: dict[str, str] = {
    Patient.Sex.FEMALE: "female",
    Patient.Sex.MALE: "male",
    Patient.Sex.OTHER: "other",
}
_FLAG_PRIORITY: dict[str, tuple[str, str]] = {
    Priority.HIGH: ("PH", "High priority"),
    Priority.MEDIUM: ("PM", "Medium priority"),
    Priority.LOW: ("PL", "Low priority"),
}


def instant(moment: datetime) -> str:
    """A FHIR dateTime/instant: ISO-8601 with its offset (stored times are aware)."""
    return moment.isoformat()


def reference(resource_type: str, resource_id: int) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def patient_resource(patient: Patient) -> Resource:
    resource: Resource = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "identifier": [
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {
                            "system": v.IDENTIFIER_TYPE,
                            "code": "MR",
                            "display": "Medical record number",
                        }
                    ],
                    "text": "MRN",
                },
                "system": v.mrn_system(patient.place_id),
                "value": patient.mrn,
                "assigner": {"display": patient.place.name},
            }
        ],
        "name": [{"text": patient.name}],
        "gender": _GENDER.get(patient.sex, "unknown"),
        "managingOrganization": {"display": patient.place.name},
    }
    if patient.date_of_birth is not None:
        resource["birthDate"] = patient.date_of_birth.isoformat()
    return resource


def device_resource(device: Device) -> Resource:
    resource: Resource = {
        "resourceType": "Device",
        "id": str(device.id),
        "identifier": [{"system": v.device_serial_system(), "value": device.serial}],
        "status": "active" if device.is_active else "inactive",
        "serialNumber": device.serial,
        "owner": {"display": device.place.name},
    }
    if device.model:
        resource["deviceName"] = [{"name": device.model, "type": "model-name"}]
    if device.patient_id is not None:
        resource["patient"] = reference("Patient", device.patient_id)
    return resource


def observation_resource(reading: Reading, status: str = "final") -> Resource:
    """A reading as an Observation of the R4 vital-signs profile (the heart-rate profile for
    ``heart_rate``); only metrics of ``METRIC_CODES`` have one. ``status``: the reading's
    result status (final unless its HL7 OBX-11 said preliminary or corrected)."""
    coded = v.METRIC_CODES[reading.metric]
    resource: Resource = {"resourceType": "Observation", "id": str(reading.id)}
    meta: Resource = {"lastUpdated": instant(reading.received_at)}
    if coded.profile:
        meta["profile"] = [coded.profile]
    resource["meta"] = meta
    resource |= {
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": v.OBSERVATION_CATEGORY,
                        "code": v.VITAL_SIGNS,
                        "display": "Vital Signs",
                    }
                ],
                "text": "Vital Signs",
            }
        ],
        "code": {"coding": [asdict(c) for c in coded.codings], "text": coded.text},
        "subject": reference("Patient", reading.patient_id),
        "effectiveDateTime": instant(reading.recorded_at),
        "issued": instant(reading.received_at),
        "valueQuantity": {
            "value": reading.value,
            "unit": v.PER_MINUTE,
            "system": v.UCUM,
            "code": v.PER_MINUTE,
        },
    }
    if reading.device_id is not None:
        resource["device"] = reference("Device", reading.device_id)
    return resource


def flag_resource(alert: Alert) -> Resource:
    """An alert as a Flag on its patient: active while open, inactive once resolved."""
    code, display = _FLAG_PRIORITY.get(alert.priority, ("PN", "No alarm"))
    period = {"start": instant(alert.raised_at)}
    if alert.resolved_at is not None:
        period["end"] = instant(alert.resolved_at)
    resource: Resource = {
        "resourceType": "Flag",
        "id": str(alert.id),
        "extension": [
            {
                "url": v.FLAG_PRIORITY_EXTENSION,
                "valueCodeableConcept": {
                    "coding": [{"system": v.FLAG_PRIORITY_CODES, "code": code, "display": display}],
                    "text": alert.priority,
                },
            }
        ],
        "status": "active" if alert.state in OPEN_STATES else "inactive",
        "category": [
            {"coding": [{"system": v.FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}]}
        ],
        "code": {
            "coding": [{"system": v.alert_kind_system(), "code": alert.kind}],
            "text": alert.message or alert.kind,
        },
        "subject": reference("Patient", alert.patient_id),
        "period": period,
    }
    if alert.device_id is not None:
        resource["author"] = reference("Device", alert.device_id)
    return resource


def bundle_searchset(
    *,
    entries: list[tuple[str, Resource]],
    self_url: str,
    next_url: str | None,
    total: int | None = None,
    included: list[tuple[str, Resource]] | None = None,
) -> Resource:
    """A searchset Bundle of ``(fullUrl, resource)`` matches, with ``self`` and ``next``,
    ``total`` when counted, and the ``included`` resources (search mode ``include``)."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    bundle: Resource = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    found = [
        {"fullUrl": full_url, "resource": resource, "search": {"mode": "match"}}
        for full_url, resource in entries
    ] + [
        {"fullUrl": full_url, "resource": resource, "search": {"mode": "include"}}
        for full_url, resource in included or []
    ]
    if found:  # FHIR JSON has no empty arrays: no matches, no "entry"
        bundle["entry"] = found
    return bundle
