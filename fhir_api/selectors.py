"""What a FHIR search or read finds, scoped to the caller by the owning apps' "visible to
this person" selectors (so the FHIR API shows exactly what the REST API shows)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from accounts.models import User
from alerts.models import Alert
from alerts.selectors import alerts_visible
from alerts.vocabulary import OPEN_STATES, AlertState
from clinical.models import Device, Patient
from clinical.selectors import devices_visible, patient_visible_get, patients_visible
from common.errors import NotFound
from fhir_api.search import DateBound, Token, date_bound_q
from fhir_api.vocabulary import OBSERVED_METRICS, device_serial_system, mrn_system_place_id
from monitoring.models import Reading
from monitoring.selectors import reading_get, readings_history

_NOTHING = Q(pk__in=[])
M = TypeVar("M", bound=Model)


def _one(visible: QuerySet[M], resource: str, pk: int) -> M:
    """The ``visible`` row with id ``pk`` (its place too); 404 as ``Resource/<id>``."""
    found = visible.select_related("place").filter(id=pk).first()
    if found is None:
        raise NotFound(f"{resource}/{pk} is not known.")
    return found


def patient_get(*, user: User, patient_id: int) -> Patient:
    return _one(patients_visible(user=user), "Patient", patient_id)


def _identifier_q(token: Token) -> Q:
    if token.system is None:
        return Q(mrn=token.code)
    place_id = mrn_system_place_id(token.system) if token.system else None
    return _NOTHING if place_id is None else Q(place_id=place_id, mrn=token.code)


def _name_q(value: str) -> Q:
    """FHIR string search: a name part (word) that starts with ``value``, any case."""
    value = value.strip()
    return Q(name__istartswith=value) | Q(name__icontains=f" {value}")


def _birthdate_q(bound: DateBound) -> Q:
    low, high = bound.low.date(), bound.high.date()
    if high == low:  # a bound finer than a day: the day it falls in
        high = low + timedelta(days=1)
    return date_bound_q(bound, "date_of_birth", low=low, high=high)


def _all_of(rows: QuerySet[M], groups: Iterable[list[Any]], q: Callable[[Any], Q]) -> QuerySet[M]:
    """``rows`` matching every group (AND), any value of each (OR)."""
    for values in groups:
        any_of = _NOTHING
        for value in values:
            any_of |= q(value)
        rows = rows.filter(any_of)
    return rows


def patients_query(
    *,
    user: User,
    identifiers: Iterable[list[Token]] = (),
    names: Iterable[list[str]] = (),
    birthdates: Iterable[list[DateBound]] = (),
) -> QuerySet[Patient]:
    """Visible patients matching every ``identifier``, ``name`` and ``birthdate`` occurrence
    (any value of each), ordered by id."""
    patients = patients_visible(user=user).select_related("place")
    patients = _all_of(patients, identifiers, _identifier_q)
    patients = _all_of(patients, names, _name_q)
    patients = _all_of(patients, birthdates, _birthdate_q)
    return patients.order_by("id")


def patients_search(
    *, user: User, identifiers: Iterable[list[Token]], after_id: int | None, count: int
) -> list[Patient]:
    """``patients_query`` from ``after_id`` on; ``count + 1`` rows so the caller knows
    whether more remain."""
    patients = patients_query(user=user, identifiers=identifiers)
    if after_id is not None:
        patients = patients.filter(id__gt=after_id)
    return list(patients[: count + 1])


def device_get(*, user: User, device_id: int) -> Device:
    return _one(devices_visible(user=user), "Device", device_id)


def _serial_q(token: Token) -> Q:
    if token.system is None or token.system == device_serial_system():
        return Q(serial=token.code)
    return _NOTHING


def device_visible(*, user: User, device_id: int) -> Device | None:
    return devices_visible(user=user).select_related("place").filter(id=device_id).first()


def devices_query(
    *, user: User, patient_id: int | None, identifiers: Iterable[list[Token]]
) -> QuerySet[Device]:
    """Visible devices (of one visible patient, if given) matching every ``identifier``
    occurrence (a serial), by id. NotFound for a patient not visible."""
    devices = devices_visible(user=user).select_related("place")
    if patient_id is not None:
        devices = devices.filter(
            patient_id=patient_visible_get(user=user, patient_id=patient_id).id
        )
    return _all_of(devices, identifiers, _serial_q).order_by("id")


def devices_search(
    *,
    user: User,
    patient_id: int | None,
    identifiers: Iterable[list[Token]],
    after_id: int | None,
    count: int,
) -> list[Device]:
    """``devices_query`` from ``after_id`` on; ``count + 1`` rows."""
    devices = devices_query(user=user, patient_id=patient_id, identifiers=identifiers)
    if after_id is not None:
        devices = devices.filter(id__gt=after_id)
    return list(devices[: count + 1])


def observation_get(*, user: User, reading_id: int) -> Reading:
    """The reading, if it is of an observed metric and its patient is visible."""
    reading = reading_get(reading_id=reading_id)
    if (
        reading is None
        or reading.metric not in OBSERVED_METRICS
        or not patients_visible(user=user).filter(id=reading.patient_id).exists()
    ):
        raise NotFound(f"Observation/{reading_id} is not known.")
    return reading


def _date_q(bound: DateBound, field: str = "recorded_at") -> Q:
    return date_bound_q(bound, field)


def _last_updated_q(bound: DateBound) -> Q:
    """``_lastUpdated`` of a reading: when it was stored (``received_at``; readings do not
    change after that)."""
    return _date_q(bound, "received_at")


def observations_query(
    *,
    user: User,
    patient_id: int,
    metrics: set[str],
    dates: Iterable[list[DateBound]],
    last_updated: Iterable[list[DateBound]] = (),
) -> QuerySet[Reading]:
    """A visible patient's readings of ``metrics``, newest first. NotFound for a patient not
    visible."""
    patient = patient_visible_get(user=user, patient_id=patient_id)
    observed = sorted(metrics & set(OBSERVED_METRICS))
    readings = readings_history(patient_id=patient.id)
    if not observed:
        return readings.none()
    readings = (
        readings.filter(metric=observed[0])
        if len(observed) == 1
        else readings.filter(metric__in=observed)
    )
    readings = _all_of(readings, dates, _date_q)
    readings = _all_of(readings, last_updated, _last_updated_q)
    return readings.order_by("-recorded_at", "-id")


def observations_page(
    readings: QuerySet[Reading], *, after: tuple[datetime, int] | None, count: int
) -> list[Reading]:
    """``readings`` (an ``observations_query``) after the keyset position ``after``
    (recorded_at, id); ``count + 1`` rows.

    Keyset, not offset: each page is one range scan of the (patient, metric, recorded_at)
    or (patient, recorded_at) index, as fast on page 1,000 as on page 1.
    """
    if after is not None:
        moment, reading_id = after
        readings = readings.filter(recorded_at__lte=moment).filter(
            Q(recorded_at__lt=moment) | Q(id__lt=reading_id)
        )
    return list(readings[: count + 1])


def flag_get(*, user: User, alert_id: int) -> Alert:
    alert = alerts_visible(user=user).filter(id=alert_id).first()
    if alert is None:
        raise NotFound(f"Flag/{alert_id} is not known.")
    return alert


def flags_count(*, user: User, patient_id: int, statuses: set[str] | None) -> int:
    return _flags(user=user, patient_id=patient_id, statuses=statuses).count()


def flags_search(
    *,
    user: User,
    patient_id: int,
    statuses: set[str] | None,
    after: tuple[datetime, int] | None,
    count: int,
) -> list[Alert]:
    """A visible patient's alerts as flags, newest first; ``statuses`` (``active``,
    ``inactive``) None means all. NotFound for a patient not visible."""
    alerts = _flags(user=user, patient_id=patient_id, statuses=statuses)
    if after is not None:
        moment, alert_id = after
        alerts = alerts.filter(raised_at__lte=moment).filter(
            Q(raised_at__lt=moment) | Q(id__lt=alert_id)
        )
    return list(alerts.order_by("-raised_at", "-id")[: count + 1])


def _flags(*, user: User, patient_id: int, statuses: set[str] | None) -> QuerySet[Alert]:
    patient = patient_visible_get(user=user, patient_id=patient_id)
    alerts = alerts_visible(user=user).filter(patient_id=patient.id)
    if statuses is not None:
        states: list[str] = []
        if "active" in statuses:
            states += OPEN_STATES
        if "inactive" in statuses:
            states.append(AlertState.RESOLVED)
        alerts = alerts.filter(state__in=states)
    return alerts
