"""Reads of alerts and alarm limits, scoped to what a person may see."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Role, User
from accounts.selectors import user_place_ids, users_admin
from alerts.ctg_rules import CTG_LIMIT_FIELDS, CtgLimits, ctg_default_limits
from alerts.models import AlarmLimit, Alert, AlertEvent, CtgAlarmLimit, CtgClassification
from alerts.rules import HOLD_FIELDS, PROFILE_METRICS, THRESHOLD_FIELDS, Limits, default_limits
from alerts.vocabulary import OPEN_STATES, Action, priority_rank_sql
from clinical.models import Patient
from clinical.selectors import patient_profiles, place_members
from common.errors import NotFound
from common.rows import rows_where_in


def alerts_visible(*, user: User) -> QuerySet[Alert]:
    """Alerts of the places the person may see, with priority_rank for ordering."""
    queryset = Alert.objects.select_related("patient", "acknowledged_by").annotate(
        priority_rank=priority_rank_sql()
    )
    place_ids = user_place_ids(user)
    if place_ids is not None:
        queryset = queryset.filter(patient__place_id__in=place_ids)
    return queryset


def alert_get_visible(*, user: User, alert_id: int) -> Alert:
    alert = alerts_visible(user=user).filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("No such alert.")
    return alert


def alerts_open_of_patients(*, patient_ids: Iterable[int]) -> dict[int, list[Alert]]:
    """Open alerts by patient, oldest first within a patient (one query)."""
    found: dict[int, list[Alert]] = defaultdict(list)
    for alert in (
        Alert.objects.filter(patient__in=list(patient_ids), state__in=OPEN_STATES)
        .select_related("patient")
        .order_by("raised_at", "id")
    ):
        found[alert.patient_id].append(alert)
    return found


def ctg_classifications_of_patients(*, patient_ids: Iterable[int]) -> dict[int, CtgClassification]:
    """The latest CTG classification of each of these patients that has one (one query)."""
    rows = CtgClassification.objects.filter(patient_id__in=list(patient_ids))
    return {row.patient_id: row for row in rows}


def alerts_due_escalation(*, now: datetime | None = None) -> QuerySet[Alert]:
    """High-priority alerts still active after ALERT_ESCALATION_SECONDS since they became
    high (``updated_at``) or since their last escalation."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ALERT_ESCALATION_SECONDS)
    return (
        Alert.objects.filter(state=Alert.State.ACTIVE, priority=Alert.Priority.HIGH)
        .annotate(
            last_escalated_at=Max("events__at", filter=Q(events__action=Action.ESCALATED)),
        )
        .annotate(escalation_base=Coalesce("last_escalated_at", "updated_at"))
        .filter(escalation_base__lte=cutoff)
        .order_by("id")
    )


def alert_recipients(*, alert: Alert) -> list[User]:
    """The doctors and nurses of the alert's place: they get every raise by e-mail."""
    members = place_members(place_id=alert.patient.place_id, roles=(Role.DOCTOR, Role.NURSE))
    return list(members.exclude(email="").order_by("id"))


def alert_escalation_recipients(*, alert: Alert) -> list[User]:
    """The place's admins, or every admin when the place has none."""
    admins = users_admin()
    members = list(admins.filter(id__in=place_members(place_id=alert.patient.place_id)))
    return sorted(members, key=lambda u: u.id) or list(admins.order_by("id"))


# --- Alarm limits ---------------------------------------------------------------------------


LIMIT_VALUE_FIELDS = (*THRESHOLD_FIELDS, *HOLD_FIELDS)


def patient_limits(*, patient: Patient) -> list[Limits]:
    """The effective limits of every metric the patient's profile records."""
    return list(
        limits_for_patients({patient.id: patient.monitoring_profile}).get(patient.id, {}).values()
    )


def limits_for_patients(profiles: dict[int, str] | Iterable[int]) -> dict[int, dict[str, Limits]]:
    """Effective limits by patient and metric: the patient's own, else the profile's default.

    profiles maps patient id to monitoring profile; given only ids, the profiles are read
    (one query). The patients' own limits are one more query.
    """
    if not isinstance(profiles, dict):
        profiles = patient_profiles(patient_ids=profiles)
    overrides: dict[int, dict[str, Limits]] = defaultdict(dict)
    # Read for every batch the evaluator handles: the columns alone, without model instances.
    for patient_id, metric, *values in rows_where_in(
        AlarmLimit,
        fields=("patient", "metric", *LIMIT_VALUE_FIELDS),
        key="patient",
        values=profiles,
    ):
        overrides[patient_id][metric] = Limits(
            metric=metric, source="patient", **dict(zip(LIMIT_VALUE_FIELDS, values, strict=True))
        )
    result: dict[int, dict[str, Limits]] = {}
    for patient_id, profile in profiles.items():
        per_metric: dict[str, Limits] = {}
        for metric in PROFILE_METRICS.get(profile, ()):
            limits = overrides[patient_id].get(metric) or default_limits(
                profile=profile, metric=metric
            )
            if limits is not None:
                per_metric[metric] = limits
        result[patient_id] = per_metric
    return result


def alert_event_get(*, event_id: int) -> AlertEvent | None:
    """One event with its alert, patient, place and ward (what delivery renders)."""
    return (
        AlertEvent.objects.select_related("alert__patient__place", "alert__patient__ward")
        .filter(pk=event_id)
        .first()
    )


def alert_events_between(*, start: datetime, end: datetime) -> QuerySet[AlertEvent]:
    return AlertEvent.objects.filter(at__gte=start, at__lte=end).order_by("id")


def alert_spans(*, start: datetime, end: datetime) -> list[tuple[int, datetime, datetime | None]]:
    """(patient, raised_at, resolved_at or None while open) of every alert, of any kind, that
    was open at some time in [start, end): the readings retention keeps around them."""
    return list(
        Alert.objects.filter(raised_at__lt=end)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=start))
        .order_by()
        .values_list("patient_id", "raised_at", "resolved_at")
    )


def ctg_limits_for_patients(patient_ids: Iterable[int]) -> dict[int, CtgLimits]:
    """Effective CTG alarm settings by patient: the patient's own, else the defaults (one
    query)."""
    ids = list(patient_ids)
    default = ctg_default_limits()
    result = dict.fromkeys(ids, default)
    # Read for every batch with patients due (the evaluator): columns, no model instances.
    for patient_id, *values in rows_where_in(
        CtgAlarmLimit, fields=("patient", *CTG_LIMIT_FIELDS), key="patient", values=ids
    ):
        result[patient_id] = CtgLimits(
            **dict(zip(CTG_LIMIT_FIELDS, values, strict=True)), source="patient"
        )
    return result
