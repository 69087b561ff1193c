"""IHE PCD-04 (Report Alert, Alert Communication Management): one ``ORU^R40`` per alert
event, built with hl7apy against the HL7 2.6 ``ORU_R01`` message structure (PCD-04's) and
validated before it is sent.

Shape (IHE PCD TF-2, 3.4):

- MSH-9 ``ORU^R40^ORU_R01``, MSH-10 ``<alert id>-<event id>`` (unique per event, the same
  on every retry), MSH-21 the ACM profile;
- PID (MRN, name), PV1 (ward and bed);
- OBR: OBR-3 the alert's id (the alert instance, the same across its events), OBR-4
  ``MDC_EVT_ALARM``, OBR-7 when the alert was raised; an NTE with the alert's message;
- OBX 1 ``MDC_EVT_ALARM``: OBX-5 the alert type (MDC event code where one fits, else our
  kind in the local coding system), OBX-8 abnormality (L/H), priority (PH/PM/PL) and kind
  (SP physiological, ST technical), OBX-14 the time of this event;
- OBX 2 ``MDC_ATTR_EVENT_PHASE`` (start, update, escalate, end), OBX 3 ``MDC_ATTR_ALARM_STATE``
  (active, inactive), OBX 4 ``MDC_ATTR_ALARM_INACTIVATION_STATE`` (enabled,
  alert-acknowledged); and, for alarms about a measurement, OBX 5 whose OBX-3 names it
  (``MDC_ECG_HEART_RATE``, LOINC fetal heart rate).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from hl7apy.base_datatypes import FT, IS, ST
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message

from alerts.models import Alert, AlertEvent
from alerts.payload import alert_payload
from alerts.vocabulary import Action, Priority
from common.validators import control_characters_replace

PROFILE = "IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.4.4^ISO"
EVENT_ALARM = "196616^MDC_EVT_ALARM^MDC"
LOCAL_SYSTEM = "99PMON"  # our own alert kinds where no MDC event code fits

# Alert kind -> (OBX-5 event code, OBX-8 abnormality flag or "").
KIND_EVENTS: dict[str, tuple[str, str]] = {
    "bradycardia": ("196652^MDC_EVT_LO^MDC", "L"),
    "tachycardia": ("196648^MDC_EVT_HI^MDC", "H"),
    "fetal_bradycardia": ("196652^MDC_EVT_LO^MDC", "L"),
    "fetal_tachycardia": ("196648^MDC_EVT_HI^MDC", "H"),
}
TECHNICAL_KINDS = frozenset(
    {"device_offline", "fhr_signal_loss", "fhr_maternal_coincidence", "delivery_failed"}
)
# The metric an alarm is about -> the measurement it names (OBX 5).
METRIC_CODES = {
    "heart_rate": "147842^MDC_ECG_HEART_RATE^MDC",
    "fetal_heart_rate": "55283-6^Fetal Heart rate^LN",
}
PRIORITY_FLAGS: dict[str, str] = {Priority.HIGH: "PH", Priority.MEDIUM: "PM", Priority.LOW: "PL"}
PHASES = {
    Action.RAISED: "start",
    Action.UPDATED: "update",
    Action.ACKNOWLEDGED: "update",
    Action.ESCALATED: "escalate",
    Action.RESOLVED: "end",
}


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
    rows: list[tuple[str, str, str | list[str]]] = [
        ("CWE", event_code, flags),
        ("ST", "68481^MDC_ATTR_EVENT_PHASE^MDC", PHASES.get(event.action, "update")),
        (
            "ST",
            "68482^MDC_ATTR_ALARM_STATE^MDC",
            "inactive" if alert.state == Alert.State.RESOLVED else "active",
        ),
        ("ST", "68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC", inactivation),
    ]
    metric = payload.get("metric")
    for index, (value_type, value, extra) in enumerate(rows, start=1):
        observation = order.add_group("ORU_R01_OBSERVATION")
        obx = observation.obx
        obx.obx_1 = str(index)
        obx.obx_2 = value_type
        if index == 1:
            obx.obx_3 = EVENT_ALARM
            obx.obx_5 = value
            for flag in extra:
                obx.add_field("OBX_8").value = flag
        else:
            obx.obx_3 = value
            obx.obx_5 = str(extra)
        obx.obx_4 = f"1.0.0.0.{index}"
        obx.obx_11 = "F"
        obx.obx_14 = _dtm(event.at)
    if metric in METRIC_CODES:
        # The measurement the alarm is about, by its code (no value: an alert records no
        # single triggering value; the NTE says what crossed which limit).
        observation = order.add_group("ORU_R01_OBSERVATION")
        obx = observation.obx
        obx.obx_1 = str(len(rows) + 1)
        obx.obx_3 = METRIC_CODES[metric]
        obx.obx_4 = f"1.0.0.0.{len(rows) + 1}"
        obx.obx_11 = "F"
    message.validate()  # raises on a message that breaks the 2.6 structure
    return str(message.to_er7()) + "\r"
