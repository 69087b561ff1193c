"""What an HL7 v2 message may say and what it means here: observation codes, units, versions,
and the error codes of an ACK's ERR segment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitoring.models import Metric

# OBX-3 identifier (first component, or the alternate identifier, fourth) -> metric. IEEE
# 11073-10101 (MDC) codes by number, LOINC by code; nothing is guessed from the text.
# The measurement source is kept: an ECG heart rate and a pulse counted by an oximeter are two
# metrics, even when a monitor sends both for the same second.
OBSERVATION_METRICS: dict[str, str] = {
    "147842": Metric.HEART_RATE,  # MDC_ECG_HEART_RATE
    "8867-4": Metric.HEART_RATE,  # LOINC heart rate
    "149530": Metric.PULSE_RATE,  # MDC_PULS_OXIM_PULS_RATE (pulse oximeter)
    "149514": Metric.PULSE_RATE,  # MDC_PULS_RATE (pulse of a non-ECG source)
    "8889-8": Metric.PULSE_RATE,  # LOINC heart rate by pulse oximetry
    "55283-6": Metric.FETAL_HEART_RATE,  # LOINC fetal heart rate
}

# OBX-6 identifier: beats per minute in MDC (MDC_DIM_BEAT_PER_MIN) and UCUM, and the ``bpm``
# many gateways send (compared without case). An empty unit is taken as the code's own unit;
# any other unit is refused rather than converted.
RATE_UNITS = frozenset({"264864", "/min", "{beats}/min", "{beat}/min", "bpm", "beats/min"})

# OBX-11 statuses that carry no reading: X (cannot be obtained), D (deleted), W (wrong).
NOT_A_READING_STATUSES = frozenset({"X", "D", "W"})
# OBX-11 statuses that are taken, and the reading status each gives (HL7 table 0085 mapped as
# the HL7 v2-to-FHIR concept map does): F final, C corrected, P/R/S preliminary, U final
# (status changed to final without a new value). An empty OBX-11 is final.
READING_STATUSES: dict[str, str] = {
    "": "final",
    "F": "final",
    "U": "final",
    "C": "corrected",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
}
# OBX-8 (abnormal flags) repetitions that mark a value that is not the patient's: a monitor in
# demonstration mode (IEEE 11073 / IHE PCD ``DEMO``).
NOT_PATIENT_DATA_FLAGS = frozenset({"DEMO"})
# Values that devices send for "no measurement" instead of an empty OBX-5.
PLACEHOLDER_VALUES = frozenset({-999, -9999, -99999, -999999})

SUPPORTED_VERSIONS = frozenset({"2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8"})
ACK_VERSION_DEFAULT = "2.6"


class AckCode:
    ACCEPT = "AA"
    ERROR = "AE"  # the message is understood but refused (unknown device, out of range, ...)
    REJECT = "AR"  # the message is not one this server takes (type, version, unparseable)


# Enhanced mode (MSH-15 set): the commit acknowledgement codes that stand for AA, AE and AR.
COMMIT_CODES = {AckCode.ACCEPT: "CA", AckCode.ERROR: "CE", AckCode.REJECT: "CR"}


class ErrorCode:
    """HL7 table 0357 (message error condition codes), carried in ERR-3."""

    SEGMENT_SEQUENCE = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT = "201"
    UNSUPPORTED_VERSION = "203"
    UNKNOWN_KEY = "204"
    APPLICATION_ERROR = "207"


ERROR_CODE_TEXT = {
    ErrorCode.SEGMENT_SEQUENCE: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE: "Data type error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT: "Unsupported event code",
    ErrorCode.UNSUPPORTED_VERSION: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY: "Unknown key identifier",
    ErrorCode.APPLICATION_ERROR: "Application internal error",
}


@dataclass(frozen=True, slots=True)
class Location:
    """ERR-2: where in the message the problem is (segment id, its position, the field)."""

    segment: str
    position: int
    field: int


class Refusal(Exception):
    """A message this server does not take: answered with AE or AR and an ERR segment.

    ``code`` is the machine code of the contract's error shape (``unknown_device``, ...),
    ``hl7_error`` the table 0357 code, ``ack_code`` AE or AR.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        ack_code: str = AckCode.ERROR,
        hl7_error: str = ErrorCode.APPLICATION_ERROR,
        location: Location | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.ack_code = ack_code
        self.hl7_error = hl7_error
        self.location = location
        self.request: Any = None  # the parsed message refused, when it could be parsed
        # A refusal for who sent it (unknown sender, another place's device or patient): it
        # is recorded in the audit trail, naming these patients.
        self.audited = False
        self.patient_ids: tuple[int, ...] = ()

    def for_audit(self, *patient_ids: int) -> Refusal:
        self.audited = True
        self.patient_ids = patient_ids
        return self

    @classmethod
    def rejected(
        cls, message: str, *, code: str, field: int, hl7_error: str = ErrorCode.APPLICATION_ERROR
    ) -> Refusal:
        """The message is refused for its header, MSH-``field`` (AR: its type, event,
        version, control id or sender is not one this server takes)."""
        location = Location("MSH", 1, field)
        return cls(
            message, code=code, ack_code=AckCode.REJECT, hl7_error=hl7_error, location=location
        )

    @classmethod
    def missing(cls, message: str, *, location: Location) -> Refusal:
        """A required field is empty (AE, table 0357 code 101)."""
        return cls(
            message,
            code="validation_error",
            hl7_error=ErrorCode.REQUIRED_FIELD_MISSING,
            location=location,
        )

    @classmethod
    def malformed(cls, message: str, *, location: Location) -> Refusal:
        """A field's value is not of its data type (AE, table 0357 code 102)."""
        return cls(
            message, code="validation_error", hl7_error=ErrorCode.DATA_TYPE, location=location
        )

    @classmethod
    def unknown(cls, message: str, *, code: str, location: Location) -> Refusal:
        """A key (an MRN, a ward, a serial) names nothing this server knows (AE, table 0357
        code 204)."""
        return cls(message, code=code, hl7_error=ErrorCode.UNKNOWN_KEY, location=location)
