"""IHE PCD-04 (Report Alert, Alert Communication Management): one ``ORU^R40`` per alert
event, built with hl7apy against the HL7 2.6 ``ORU_R01`` message structure (PCD-04's) and
validated before it is sent.

Shape (IHE PCD TF-2, 3.4):

- MSH-9 ``ORU^R40^ORU_R01``, MSH-10 ``<alert id>-<event id>`` (unique per event, the same
  on every retry), MSH-21 the ACM profile;
- PID (MRN, name), PV1 (ward and bed);
- OBR: OBR-3 the alert's id (the alert instance, the same across its events), OBR-4
  ``MDC_EVT_ALARM``, OBR-7 when the alert was raised; an NTE with the alert's message;
- the alarm's facets, one OBX each, OBX-4 ``<source>.<facet>`` in the order of the ACM
  supplement's example: facet 1 the alert type (OBX-3 ``MDC_EVT_ALARM``, OBX-5 the MDC event
  code where one fits, else our kind in the local coding system; OBX-8 abnormality L/H,
  priority PH/PM/PL and source SP physiological / ST technical), facet 2 the source
  measurement (for an alarm about a measurement: OBX-3 its code, OBX-5 the value it was
  raised on, OBX-6 its unit, OBX-7 the alarm limits as the normal range), facet 3
  ``MDC_ATTR_EVENT_PHASE`` (start, update, escalate, end), facet 4 ``MDC_ATTR_ALARM_STATE``
  (active, inactive), facet 5 ``MDC_ATTR_ALARM_INACTIVATION_STATE`` (enabled,
  alert-acknowledged); OBX-14 the time of this event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from hl7apy.base_datatypes import FT, IS, ST
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message

from alerts.models import Alert, AlertEvent
from alerts.payload import alert_payload
from alerts.rules import Limits
from alerts.selectors import patient_limits
from alerts.vocabulary import Action, Priority
from common.validators import control_characters_replace
from monitoring.selectors import reading_latest

PROFILE = "IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.4.4^ISO"
EVENT_ALARM = "196616^MDC_EVT_ALARM^MDC"
LOCAL_SYSTEM = "99PMON"  # our own alert kinds where no MDC event code fits

# Alert kind -> (OBX-5 event code, OBX-8 abnormality flag or ""). "Low" is MDC 196670, the
# code other alert senders and the FHIR DeviceAlert material use for a value below its limit.
EVENT_LOW = "196670^MDC_EVT_LO_LT_LIM^MDC"
EVENT_HIGH = "196648^MDC_EVT_HI^MDC"
KIND_EVENTS: dict[str, tuple[str, str]] = {
    "bradycardia": (EVENT_LOW, "L"),
    "tachycardia": (EVENT_HIGH, "H"),
    "fetal_bradycardia": (EVENT_LOW, "L"),
    "fetal_tachycardia": (EVENT_HIGH, "H"),
}
BEATS_PER_MINUTE = "264864^MDC_DIM_BEAT_PER_MIN^MDC"
TECHNICAL_KINDS = frozenset(
    {"device_offline", "fhr_signal_loss", "fhr_maternal_coincidence", "delivery_failed"}
)
# The metric an alarm is about -> the measurement it names (OBX 5).
METRIC_CODES = {
    "heart_rate": "147842^MDC_ECG_HEART_RATE^MDC",
    "fetal_heart_rate": "55283-6^Fetal Heart rate^LN",
    "pulse_rate": "149530^MDC_PULS_OXIM_PULS_RATE^MDC",
}
PRIORITY_FLAGS: dict[str, str] = {Priority.HIGH: "PH", Priority.MEDIUM: "PM", Priority.LOW: "PL"}
PHASES = {
    Action.RAISED: "start",
    Action.UPDATED: "update",
    Action.ACKNOWLEDGED: "update",
    Action.ESCALATED: "escalate",
    Action.RESOLVED: "end",
}


@dataclass(frozen=True, slots=True)
class Facet:
    """One OBX of the alarm: its value type, OBX-3, OBX-5 and, for the source measurement,
    unit (OBX-6), limits (OBX-7) and the time of the value (OBX-14)."""

    value_type: str
    code: str
    value: str
    unit: str = ""
    limits: str = ""
    flags: list[str] = field(default_factory=list)
    at: datetime | None = None


def _source_facet(alert: Alert, metric: str, *, at: datetime) -> Facet:
    """Facet 2: the measurement the alarm is about, with the value it was raised on (the
    patient's last reading of that metric up to the event; none for a value no longer
    known), beats per minute, and the alarm limits as the normal range ``low-high``."""
    reading = reading_latest(patient_id=alert.patient_id, metric=metric, at=at)
    limits = next(
        (lim for lim in patient_limits(patient=alert.patient) if lim.metric == metric), None
    )
    return Facet(
        "NM" if reading is not None else "",
        METRIC_CODES[metric],
        str(reading.value) if reading is not None else "",
        unit=BEATS_PER_MINUTE if reading is not None else "",
        limits=_normal_range(limits) if limits is not None else "",
        at=reading.recorded_at if reading is not None else None,
    )


def _normal_range(limits: Limits) -> str:
    """The range inside every band: above the highest brady threshold, below the lowest
    tachy threshold (HL7 reference range ``low-high``; an open side is left empty)."""
    brady = [t for t in (limits.brady_high, limits.brady_medium, limits.brady_low) if t is not None]
    tachy = [t for t in (limits.tachy_low, limits.tachy_medium, limits.tachy_high) if t is not None]
    low = str(max(brady) + 1) if brady else ""
    high = str(min(tachy) - 1) if tachy else ""
    return f"{low}-{high}" if low or high else ""


def _dtm(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S%z") or moment.strftime("%Y%m%d%H%M%S+0000")


def _text(datatype: type[ST] | type[IS] | type[FT], value: str) -> ST | IS | FT:
    """What people typed, as a value of ``datatype``: hl7apy escapes the separators
    (``| ^ ~ \\ &``) of a typed value; a control character (data stored before names were
    validated) becomes a space, as a carriage return would end the segment; and a value
    longer than the type allows (an IS is 20 characters in HL7 2.6) is cut to it rather than
    failing the whole report (the full name stays in the system of record)."""
    text = control_characters_replace(value)
    return datatype(text[: datatype("").max_length])


def pcd04_control_id(event: AlertEvent) -> str:
    return f"ALERT{event.alert_id}-{event.id}"


def oru_r40_build(*, event: AlertEvent, receiving_application: str = "") -> str:
    """The ORU^R40 reporting ``event`` (its alert, patient and place loaded or loadable)."""
    alert: Alert = event.alert
    patient = alert.patient
    payload = alert_payload(alert)
    message = Message("ORU_R01", version="2.6", validation_level=VALIDATION_LEVEL.STRICT)
    msh = message.msh
    msh.msh_3 = settings.HL7_SENDING_APPLICATION
    if settings.HL7_SENDING_FACILITY:
        msh.msh_4 = settings.HL7_SENDING_FACILITY
    if receiving_application:
        msh.msh_5 = receiving_application
    msh.msh_7 = _dtm(event.at)
    msh.msh_9 = "ORU^R40^ORU_R01"
    msh.msh_10 = pcd04_control_id(event)
    msh.msh_11 = "P"
    msh.msh_12 = "2.6"
    msh.msh_15 = "AL"
    msh.msh_16 = "NE"
    msh.msh_18 = "UNICODE UTF-8"
    msh.msh_21 = PROFILE

    result = message.add_group("ORU_R01_PATIENT_RESULT")
    person = result.add_group("ORU_R01_PATIENT")
    person.pid.pid_3.cx_1 = _text(ST, patient.mrn)
    person.pid.pid_3.cx_5 = "MR"
    person.pid.pid_5.xpn_1.fn_1 = _text(ST, patient.name)
    visit = person.add_group("ORU_R01_VISIT")
    visit.pv1.pv1_2 = "I"
    if patient.ward is not None:
        visit.pv1.pv1_3.pl_1 = _text(IS, patient.ward.name)
    if patient.bed:
        visit.pv1.pv1_3.pl_3 = _text(IS, patient.bed)

    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    order.obr.obr_1 = "1"
    order.obr.obr_3.ei_1 = str(alert.id)
    order.obr.obr_3.ei_2 = settings.HL7_SENDING_APPLICATION
    order.obr.obr_4 = EVENT_ALARM
    order.obr.obr_7 = _dtm(alert.raised_at)
    if alert.message:
        note = order.add_segment("NTE")
        note.nte_1 = "1"
        note.nte_3 = _text(FT, alert.message)

    event_code, abnormality = KIND_EVENTS.get(alert.kind, (f"{alert.kind}^^{LOCAL_SYSTEM}", ""))
    source = "ST" if alert.kind in TECHNICAL_KINDS else "SP"
    flags = [f for f in (abnormality, PRIORITY_FLAGS.get(alert.priority, "PN"), source) if f]
    inactivation = "alert-acknowledged" if alert.acknowledged_at is not None else "enabled"
    metric = payload.get("metric")
    facets: list[Facet] = [Facet("CWE", EVENT_ALARM, event_code, flags=flags)]
    if metric in METRIC_CODES:
        facets.append(_source_facet(alert, metric, at=event.at))
    facets += [
        Facet("ST", "68481^MDC_ATTR_EVENT_PHASE^MDC", PHASES.get(event.action, "update")),
        Facet(
            "ST",
            "68482^MDC_ATTR_ALARM_STATE^MDC",
            "inactive" if alert.state == Alert.State.RESOLVED else "active",
        ),
        Facet("ST", "68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC", inactivation),
    ]
    for index, facet in enumerate(facets, start=1):
        # Facet numbers follow the ACM example whether or not a source row is present:
        # 1 type, 2 source, 3 phase, 4 state, 5 inactivation.
        number = index if metric in METRIC_CODES or index == 1 else index + 1
        obx = order.add_group("ORU_R01_OBSERVATION").obx
        obx.obx_1 = str(index)
        if facet.value_type:
            obx.obx_2 = facet.value_type
        obx.obx_3 = facet.code
        obx.obx_4 = f"1.0.0.0.{number}"
        if facet.value:
            obx.obx_5 = facet.value
        if facet.unit:
            obx.obx_6 = facet.unit
        if facet.limits:
            obx.obx_7 = facet.limits
        for flag in facet.flags:
            obx.add_field("OBX_8").value = flag
        obx.obx_11 = "F"
        obx.obx_14 = _dtm(facet.at or event.at)
    message.validate()  # raises on a message that breaks the 2.6 structure
    return str(message.to_er7()) + "\r"
