"""The writes of alerts, one module per topic: the alert lifecycle (``lifecycle``), per-patient
alarm limits and CTG alarm settings (``limits``), the latest CTG classification
(``ctg_classification``), and what the dashboards hear of them (``publishing``)."""

from alerts.services.ctg_classification import ctg_classification_record
from alerts.services.lifecycle import (
    alert_acknowledge,
    alert_condition_resolve,
    alert_escalate,
    alert_raise,
    alert_resolve,
    alerts_escalate_due,
    alerts_patient_end,
    alerts_patient_merge,
)
from alerts.services.limits import (
    alarm_limits_reset,
    alarm_limits_set,
    alarm_limits_validate,
    ctg_alarm_limits_reset,
    ctg_alarm_limits_set,
)
from alerts.services.publishing import alert_publish, ctg_classification_publish

__all__ = [
    "alarm_limits_reset",
    "alarm_limits_set",
    "alarm_limits_validate",
    "alert_acknowledge",
    "alert_condition_resolve",
    "alert_escalate",
    "alert_publish",
    "alert_raise",
    "alert_resolve",
    "alerts_escalate_due",
    "alerts_patient_end",
    "alerts_patient_merge",
    "ctg_alarm_limits_reset",
    "ctg_alarm_limits_set",
    "ctg_classification_publish",
    "ctg_classification_record",
]
