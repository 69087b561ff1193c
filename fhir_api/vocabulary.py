"""The codes FHIR resources carry: code systems, the metric codes, the profiles claimed.

A metric is exposed as an Observation only if it has an entry in ``METRIC_CODES``: a
standard code that says what the number is. Others stay out of every FHIR answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from monitoring.models import Metric

FHIR_VERSION = "4.0.1"

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"  # ISO/IEEE 11073-10101 nomenclature
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_PRIORITY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/flag-priority"
FLAG_PRIORITY_CODES = "http://hl7.org/fhir/flag-priority-code"

PROFILE_HEART_RATE = "http://hl7.org/fhir/StructureDefinition/heartrate"
PROFILE_VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"

VITAL_SIGNS = "vital-signs"
PER_MINUTE = "/min"


# Its fields are those of a FHIR Coding, as ``dataclasses.asdict`` renders it.
@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str


@dataclass(frozen=True)
class MetricCode:
    """How one metric is coded: its codings (the first is the primary), text and the
    profile it conforms to, if any."""

    text: str
    codings: tuple[Coding, ...]
    profile: str | None = None


METRIC_CODES: dict[str, MetricCode] = {
    Metric.HEART_RATE: MetricCode(
        text="Heart rate",
        codings=(
            Coding(LOINC, "8867-4", "Heart rate"),
            Coding(MDC, "147842", "MDC_ECG_HEART_RATE"),
        ),
        profile=PROFILE_HEART_RATE,
    ),
    # A pulse counted by an oximeter (or another non-ECG source) is not the ECG heart rate:
    # LOINC 8889-8 "Heart rate by Pulse oximetry" with MDC 149530. The R4 heart-rate profile
    # fixes LOINC 8867-4, so it claims the base vital-signs profile only.
    Metric.PULSE_RATE: MetricCode(
        text="Pulse rate",
        codings=(
            Coding(LOINC, "8889-8", "Heart rate by Pulse oximetry"),
            Coding(MDC, "149530", "MDC_PULS_OXIM_PULS_RATE"),
        ),
    ),
    # The R4 heart-rate profile fixes LOINC 8867-4 (the patient's own rate): a fetal heart
    # rate does not conform to it, so it claims no profile.
    Metric.FETAL_HEART_RATE: MetricCode(
        text="Fetal heart rate",
        codings=(Coding(LOINC, "55283-6", "Fetal Heart rate"),),
    ),
}

OBSERVED_METRICS: tuple[str, ...] = tuple(METRIC_CODES)

# Metrics deliberately not exposed, with the reason (docs/fhir.md). Every metric is in one of
# the two tables: a test fails for a new metric until someone decides which.
UNCODED_METRICS: dict[str, str] = {
    "uterine_activity": (
        "relative toco units (0-100, scaled per transducer): no LOINC or MDC code with a UCUM "
        "unit says what the number is"
    ),
}


def metrics_of_token(system: str | None, code: str) -> set[str]:
    """The metrics a search token ``[system|]code`` names; ``system`` None means any system,
    an empty system means "no system" (which none of our codings has)."""
    return {
        metric
        for metric, coded in METRIC_CODES.items()
        for coding in coded.codings
        if coding.code == code and (system is None or coding.system == system)
    }


# --- Identifiers -----------------------------------------------------------------------------
# An MRN is unique within its place, so each place is its own identifier system.


def _system_base() -> str:
    return str(settings.FHIR_SYSTEM_BASE).rstrip(":/")


def mrn_system(place_id: int) -> str:
    return f"{_system_base()}:place:{place_id}:mrn"


def mrn_system_place_id(system: str) -> int | None:
    """The place of an MRN system built by ``mrn_system``, or None for any other system."""
    prefix, suffix = f"{_system_base()}:place:", ":mrn"
    if not (system.startswith(prefix) and system.endswith(suffix)):
        return None
    middle = system[len(prefix) : -len(suffix)]
    return int(middle) if middle.isdigit() else None


def device_serial_system() -> str:
    return f"{_system_base()}:device-serial"


def alert_kind_system() -> str:
    return f"{_system_base()}:alert-kind"
