"""IHE PCD-01 (Communicate PCD Data): an ORU^R01 of HL7 2.3.1 to 2.8 read into observations.

Pure: no database, no network. python-hl7 parses the message (segments, fields, repetitions,
components, escapes, HL7 date-times); this module walks the segments in order, so each OBX
belongs to the PID before it, and maps what PCD-01 says onto readings:

- device: OBX-18 (equipment instance identifier), first component of the first repetition;
  else the OBX-18 of the row's monitor group (same first number of OBX-4) or of the OBR; else
  MSH-3 (sending application), second component (the gateway's or monitor's EUI-64);
- a row that cannot be taken (bad value, unit, time, status) is recorded in ``row_refusals``
  and the others are read on;
- value OBX-5 (OBX-2 ``NM``), unit OBX-6, status OBX-11, time OBX-14, else OBR-7;
- observation code OBX-3 by number (``vocabulary.OBSERVATION_METRICS``); unknown codes are
  skipped and counted, never guessed.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import hl7
from django.conf import settings
from django.utils import timezone

from hl7v2.vocabulary import (
    NOT_A_READING_STATUSES,
    NOT_PATIENT_DATA_FLAGS,
    OBSERVATION_METRICS,
    PLACEHOLDER_VALUES,
    RATE_UNITS,
    READING_STATUSES,
    SUPPORTED_VERSIONS,
    AckCode,
    ErrorCode,
    Location,
    Refusal,
)

# An HL7 DTM down to the minute at least (the alarm rules measure hold times in seconds).
_DTM = re.compile(r"^\d{12}(\d{2}(\.\d{1,4})?)?([+-]\d{4})?$")


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading a message carries, not yet matched to a device."""

    index: int  # position among the message's OBX segments, from 1 (part of the seq)
    device_serial: str
    mrns: tuple[str, ...]  # PID-3 MRNs of the patient the OBX is filed under; () when absent
    metric: str
    value: int
    recorded_at: datetime
    time_location: Location  # where the time came from (OBX-14 or OBR-7)
    status: str = "final"  # the reading status (vocabulary.READING_STATUSES)
    device_location: Location | None = None  # where the device came from (OBX-18, MSH-3)


@dataclass(slots=True)
class Pcd01Message:
    control_id: str  # MSH-10
    version: str  # MSH-12
    message: hl7.Message
    observations: list[Observation] = field(default_factory=list)
    skipped_codes: list[str] = field(default_factory=list)  # unknown OBX-3 codes
    not_readings: int = 0  # known codes with status X/D/W, an empty or a placeholder value
    demo: int = 0  # rows flagged DEMO in OBX-8 (a monitor in demonstration mode)
    # Rows refused one by one (a bad value, unit or time): the message's other rows are taken.
    row_refusals: list[Refusal] = field(default_factory=list)


def message_parse(text: str) -> hl7.Message:
    """The HL7 message in ``text`` (segments separated by CR; LF and CRLF are tolerated)."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not text.startswith("MSH"):
        raise Refusal(
            "The message does not begin with an MSH segment.",
            code="parse_error",
            ack_code=AckCode.REJECT,
            hl7_error=ErrorCode.SEGMENT_SEQUENCE,
        )
    try:
        return hl7.parse(text)
    except (hl7.ParseException, ValueError, IndexError) as exc:
        raise Refusal(
            f"The message cannot be parsed: {exc}",
            code="parse_error",
            ack_code=AckCode.REJECT,
            hl7_error=ErrorCode.SEGMENT_SEQUENCE,
        ) from exc


def _get(segment: hl7.Segment, number: int, component: int = 1, repeat: int = 1) -> str:
    try:
        return str(
            segment.extract_field(field_num=number, repeat_num=repeat, component_num=component)
        ).strip()
    except (IndexError, KeyError):
        return ""


# What the listener takes: message type (MSH-9.1) -> its trigger events (MSH-9.2).
TAKEN_EVENTS: dict[str, tuple[str, ...]] = {
    "ORU": ("R01",),
    "ADT": ("A01", "A02", "A03", "A04", "A08", "A11", "A13", "A40"),
}


def header_check(message: hl7.Message, kind_wanted: str) -> tuple[hl7.Segment, str, str]:
    """MSH, MSH-10 and MSH-12 of a ``kind_wanted`` message, refusing (AR) what this server
    does not take."""
    msh = message.segment("MSH")
    kind, event = _get(msh, 9, 1), _get(msh, 9, 2)
    control_id = _get(msh, 10)
    version = _get(msh, 12)
    if kind != kind_wanted:
        raise Refusal.rejected(
            f"Only ORU^R01 and ADT messages are taken, not {kind or 'a message without MSH-9'}.",
            code="unsupported_message_type",
            hl7_error=ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            field=9,
        )
    if event not in TAKEN_EVENTS[kind]:
        raise Refusal.rejected(
            f"{kind}^{event} is not taken; {kind} events taken: {', '.join(TAKEN_EVENTS[kind])}.",
            code="unsupported_event",
            hl7_error=ErrorCode.UNSUPPORTED_EVENT,
            field=9,
        )
    if version not in SUPPORTED_VERSIONS:
        raise Refusal.rejected(
            f"HL7 version {version or '(none)'} is not supported; send 2.3.1 to 2.8.",
            code="unsupported_version",
            hl7_error=ErrorCode.UNSUPPORTED_VERSION,
            field=12,
        )
    if not control_id:
        raise Refusal.rejected(
            "MSH-10 (message control id) is required: it is how a resent message is known.",
            code="missing_control_id",
            hl7_error=ErrorCode.REQUIRED_FIELD_MISSING,
            field=10,
        )
    return msh, control_id, version


def hl7_datetime(value: str, *, location: Location) -> datetime:
    """An HL7 DTM as an aware datetime. Without an offset it is local time of TIME_ZONE."""
    if not _DTM.match(value):
        raise Refusal.malformed(
            f"{value!r} is not an HL7 date-time (YYYYMMDDHHMM[SS[.S]][+/-ZZZZ]).", location=location
        )
    try:
        moment: datetime = hl7.parse_datetime(value)
    except (ValueError, OverflowError) as exc:  # e.g. an offset of +9999
        raise Refusal.malformed(
            f"{value!r} is not a valid date-time: {exc}.", location=location
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))
    return moment


def _value(text: str, *, location: Location) -> int | None:
    """OBX-5 as a whole number of beats per minute; None for "no measurement"."""
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise Refusal.malformed(f"OBX-5 {text!r} is not a number.", location=location) from None
    if not number.is_finite() or math.isnan(float(number)):
        return None
    whole = int(number.to_integral_value(rounding=ROUND_HALF_UP))
    return None if whole in PLACEHOLDER_VALUES else whole


def _code(obx: hl7.Segment) -> str:
    code = _get(obx, 3, 1)
    if code in OBSERVATION_METRICS:
        return code
    alternate = _get(obx, 3, 4)
    return alternate if alternate in OBSERVATION_METRICS else code


def pcd01_parse(text: str) -> Pcd01Message:
    """Read one ORU^R01; raises ``Refusal`` (AR or AE) for what cannot be taken."""
    return pcd01_read(message_parse(text))


def pcd01_read(message: hl7.Message) -> Pcd01Message:
    """An ORU^R01 already parsed; raises ``Refusal`` (AR or AE) for what cannot be taken."""
    try:
        return _read(message)
    except Refusal as refusal:
        refusal.request = message  # answered as a reply to it
        raise


def msh_value(message: hl7.Message, number: int, component: int = 1) -> str:
    """MSH-<number>, one component, "" when absent."""
    return _get(message.segment("MSH"), number, component)


def pid_mrns(pid: hl7.Segment) -> tuple[str, ...]:
    """The MRNs PID-3 names: every repetition whose identifier type (CX-5) is ``MR``, or, when
    none says its type, the first component of every repetition (a gateway often sends the
    MRN alone; another sends a visit or person number first and the MRN after it)."""
    try:
        repetitions = len(pid[3])
    except IndexError:
        return ()
    ids = [(_get(pid, 3, 1, r), _get(pid, 3, 5, r)) for r in range(1, repetitions + 1)]
    typed = tuple(value for value, kind in ids if value and kind.upper() == "MR")
    if typed:
        return typed
    if any(kind for _value, kind in ids):
        return ()  # typed, but no MRN among them (PI, AN, VN ...): no MRN to check
    return tuple(value for value, _kind in ids if value)


def _read(message: hl7.Message) -> Pcd01Message:
    msh, control_id, version = header_check(message, "ORU")
    result = Pcd01Message(control_id=control_id, version=version, message=message)
    gateway = _get(msh, 3, 2)
    mrns: tuple[str, ...] = ()
    obr_time = ""
    obx_index = 0
    # OBX-18 is sent once per monitor in many gateways (Mindray eGateway, ...): on the first
    # OBX of the monitor's group (its MDS, the first number of OBX-4), not on the metric rows
    # after it. Rows without OBX-18 take the device of their group, else the OBR's last one.
    group_device: dict[str, tuple[str, int]] = {}
    last_device: tuple[str, int] | None = None
    for segment in message:
        kind = str(segment[0])
        if kind == "PID":
            mrns = pid_mrns(segment)
            obr_time = ""
            group_device, last_device = {}, None
        elif kind == "OBR":
            obr_time = _get(segment, 7)
            group_device, last_device = {}, None
        elif kind == "OBX":
            obx_index += 1
            group = _get(segment, 4).split(".", 1)[0]
            own = _get(segment, 18, 1)
            if own:
                last_device = group_device[group] = (own, obx_index)
            inherited = group_device.get(group) or last_device
            try:
                observation = _observation(
                    segment,
                    index=obx_index,
                    device=(own, obx_index) if own else inherited,
                    gateway=gateway,
                    mrns=mrns,
                    obr_time=obr_time,
                    result=result,
                )
            except Refusal as refusal:
                result.row_refusals.append(refusal)
                continue
            if observation is not None:
                result.observations.append(observation)
    return result


def _observation(
    obx: hl7.Segment,
    *,
    index: int,
    device: tuple[str, int] | None,
    gateway: str,
    mrns: tuple[str, ...],
    obr_time: str,
    result: Pcd01Message,
) -> Observation | None:
    code = _code(obx)
    metric = OBSERVATION_METRICS.get(code)
    if metric is None:
        result.skipped_codes.append(code or "(none)")
        return None
    status_code = _get(obx, 11).upper()
    if status_code in NOT_A_READING_STATUSES:
        result.not_readings += 1
        return None
    if _flags(obx) & NOT_PATIENT_DATA_FLAGS:
        result.demo += 1
        return None
    status = READING_STATUSES.get(status_code)
    if status is None:
        raise Refusal(
            f"OBX-11 {status_code!r} is not a result status this server takes "
            "(F, C, P, R, S, U; X, D and W are skipped).",
            code="validation_error",
            hl7_error=ErrorCode.TABLE_VALUE_NOT_FOUND,
            location=Location("OBX", index, 11),
        )
    value_type = _get(obx, 2)
    if value_type and value_type != "NM":
        raise Refusal.malformed(
            f"OBX-2 of a heart rate must be NM, not {value_type}.",
            location=Location("OBX", index, 2),
        )
    value = _value(_get(obx, 5), location=Location("OBX", index, 5))
    if value is None:
        result.not_readings += 1
        return None
    unit = _get(obx, 6, 1)
    if unit and unit not in RATE_UNITS and unit.lower() not in RATE_UNITS:
        raise Refusal(
            f"OBX-6 unit {unit!r} is not beats per minute (MDC 264864, UCUM /min, bpm).",
            code="unit_not_supported",
            hl7_error=ErrorCode.TABLE_VALUE_NOT_FOUND,
            location=Location("OBX", index, 6),
        )
    when = _get(obx, 14)
    location = Location("OBX", index, 14)
    if not when:
        when, location = obr_time, Location("OBR", 1, 7)
    if not when:
        raise Refusal.missing(
            "The observation has no time: OBX-14 or OBR-7 is required.",
            location=Location("OBX", index, 14),
        )
    if device is not None:
        serial, source = device[0], Location("OBX", device[1], 18)
    elif gateway:
        serial, source = gateway, Location("MSH", 1, 3)
    else:
        raise Refusal(
            "No device named: OBX-18 (equipment instance identifier) or MSH-3 component 2.",
            code="device_missing",
            hl7_error=ErrorCode.REQUIRED_FIELD_MISSING,
            location=Location("OBX", index, 18),
        )
    return Observation(
        index=index,
        device_serial=serial,
        mrns=mrns,
        metric=metric,
        value=value,
        recorded_at=hl7_datetime(when, location=location),
        time_location=location,
        status=status,
        device_location=source,
    )


def _flags(obx: hl7.Segment) -> set[str]:
    """OBX-8 (abnormal flags), every repetition, upper case."""
    try:
        repetitions = len(obx[8])
    except IndexError:
        return set()
    return {_get(obx, 8, 1, r).upper() for r in range(1, repetitions + 1)} - {""}


@dataclass(frozen=True, slots=True)
class ObservationOut:
    """One OBX of a message built by ``oru_r01_build``."""

    value: str
    at: datetime | None = None
    code: str = "147842^MDC_ECG_HEART_RATE^MDC"
    unit: str = "264864^MDC_DIM_BEAT_PER_MIN^MDC"
    status: str = "F"
    device: str = ""  # OBX-18 first component; "" leaves OBX-18 empty


def hl7_dtm(moment: datetime) -> str:
    """An aware datetime as an HL7 DTM with milliseconds and its offset."""
    offset = moment.strftime("%z") or "+0000"
    return moment.strftime("%Y%m%d%H%M%S.") + f"{moment.microsecond // 1000:03d}" + offset


def oru_r01_build(
    *,
    control_id: str,
    observations: list[ObservationOut],
    mrn: str = "",
    gateway: str = "",
    version: str = "2.6",
    at: datetime | None = None,
) -> str:
    """A PCD-01 ORU^R01 as a device gateway sends it (the simulator, the benchmark, tests and
    the docs' examples use it). ``gateway`` is MSH-3's second component (an EUI-64)."""
    when = hl7_dtm(at or timezone.now())
    segments = [
        f"MSH|^~\\&|GATEWAY^{gateway}^EUI-64|DEVICES|PATIENT_MONITOR|HOSPITAL|{when}||"
        f"ORU^R01^ORU_R01|{control_id}|P|{version}|||NE|AL||UNICODE UTF-8|||"
        "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
        f"PID|||{mrn}^^^HOSPITAL^MR" if mrn else "PID|||",
        f"OBR|1|{control_id}^GATEWAY||182777000^monitoring of patient^SNOMED-CT|||{when}",
    ]
    for index, o in enumerate(observations, start=1):
        stamp = hl7_dtm(o.at) if o.at is not None else ""
        segments.append(
            f"OBX|{index}|NM|{o.code}|1.1.1.{index}|{o.value}|{o.unit}|||||{o.status}|||"
            f"{stamp}||||{o.device}"
        )
    return "\r".join(segments) + "\r"
