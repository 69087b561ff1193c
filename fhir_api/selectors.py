"""What a FHIR search or read finds, scoped to the caller by the owning apps' "visible to
this person" selectors (so the FHIR API shows exactly what the REST API shows)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q

from accounts.models import User
from alerts.models import Alert
from alerts.selectors import alerts_visible
from alerts.vocabulary import OPEN_STATES, AlertState
from clinical.models import Device, Patient
from clinical.selectors import devices_visible, patient_visible_get, patients_visible
from common.errors import NotFound
from fhir_api.search import DateBound, Token
from fhir_api.vocabulary import OBSERVED_METRICS, device_serial_system, mrn_system_place_id
from monitoring.models import Reading
from monitoring.selectors import reading_get, readings_history

_NOTHING = Q(pk__in=[])


def patient_get(*, user: User, patient_id: int) -> Patient:
    patient = patients_visible(user=user).select_related("place").filter(id=patient_id).first()
    if patient is None:
        raise NotFound(f"Patient/{patient_id} is not known.")
    return patient


def _identifier_q(token: Token) -> Q:
    if token.system is None:
        return Q(mrn=token.code)
    place_id = mrn_system_place_id(token.system) if token.system else None
    return _NOTHING if place_id is None else Q(place_id=place_id, mrn=token.code)


def patients_search(
    *, user: User, identifiers: Iterable[list[Token]], after_id: int | None, count: int
) -> list[Patient]:
    """Visible patients matching every ``identifier`` occurrence (any token of each), by id;
    ``count + 1`` rows so the caller knows whether more remain."""
    patients = patients_visible(user=user).select_related("place")
    for tokens in identifiers:
        any_of = _NOTHING
        for token in tokens:
            any_of |= _identifier_q(token)
        patients = patients.filter(any_of)
    if after_id is not None:
        patients = patients.filter(id__gt=after_id)
    return list(patients.order_by("id")[: count + 1])


def device_get(*, user: User, device_id: int) -> Device:
    device = devices_visible(user=user).select_related("place").filter(id=device_id).first()
    if device is None:
        raise NotFound(f"Device/{device_id} is not known.")
    return device


def _serial_q(token: Token) -> Q:
    if token.system is None or token.system == device_serial_system():
        return Q(serial=token.code)
    return _NOTHING


def devices_search(
    *,
    user: User,
    patient_id: int | None,
    identifiers: Iterable[list[Token]],
    after_id: int | None,
    count: int,
) -> list[Device]:
    """Visible devices (of one visible patient, if given) matching every ``identifier``
    occurrence (a serial), by id; ``count + 1`` rows. NotFound for a patient not visible."""
    devices = devices_visible(user=user).select_related("place")
    if patient_id is not None:
        devices = devices.filter(
            patient_id=patient_visible_get(user=user, patient_id=patient_id).id
        )
    for tokens in identifiers:
        any_of = _NOTHING
        for token in tokens:
            any_of |= _serial_q(token)
        devices = devices.filter(any_of)
    if after_id is not None:
        devices = devices.filter(id__gt=after_id)
    return list(devices.order_by("id")[: count + 1])


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


def _date_q(bound: DateBound) -> Q:
    low, high = bound.low, bound.high
    return {
        "eq": Q(recorded_at__gte=low, recorded_at__lt=high),
        "ne": Q(recorded_at__lt=low) | Q(recorded_at__gte=high),
        "gt": Q(recorded_at__gte=high),
        "sa": Q(recorded_at__gte=high),
        "ge": Q(recorded_at__gte=low),
        "lt": Q(recorded_at__lt=low),
        "eb": Q(recorded_at__lt=low),
        "le": Q(recorded_at__lt=high),
    }[bound.prefix]


def observations_search(
    *,
    user: User,
    patient_id: int,
    metrics: set[str],
    dates: Iterable[list[DateBound]],
    after: tuple[datetime, int] | None,
    count: int,
) -> list[Reading]:
    """A visible patient's readings of ``metrics``, newest first, after the keyset position
    ``after`` (recorded_at, id); ``count + 1`` rows. NotFound for a patient not visible.

    Keyset, not offset: each page is one range scan of the (patient, metric, recorded_at)
    or (patient, recorded_at) index, as fast on page 1,000 as on page 1.
    """
    patient = patient_visible_get(user=user, patient_id=patient_id)
    observed = sorted(metrics & set(OBSERVED_METRICS))
    if not observed:
        return []
    readings = readings_history(patient_id=patient.id)
    readings = (
        readings.filter(metric=observed[0])
        if len(observed) == 1
        else readings.filter(metric__in=observed)
    )
    for bounds in dates:
        any_of = _NOTHING
        for bound in bounds:
            any_of |= _date_q(bound)
        readings = readings.filter(any_of)
    if after is not None:
        moment, reading_id = after
        readings = readings.filter(recorded_at__lte=moment).filter(
            Q(recorded_at__lt=moment) | Q(id__lt=reading_id)
        )
    return list(readings.order_by("-recorded_at", "-id")[: count + 1])


def flag_get(*, user: User, alert_id: int) -> Alert:
    alert = alerts_visible(user=user).filter(id=alert_id).first()
    if alert is None:
        raise NotFound(f"Flag/{alert_id} is not known.")
    return alert


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
    patient = patient_visible_get(user=user, patient_id=patient_id)
    alerts = alerts_visible(user=user).filter(patient_id=patient.id)
    if statuses is not None:
        states: list[str] = []
        if "active" in statuses:
            states += OPEN_STATES
        if "inactive" in statuses:
            states.append(AlertState.RESOLVED)
        alerts = alerts.filter(state__in=states)
    if after is not None:
        moment, alert_id = after
        alerts = alerts.filter(raised_at__lte=moment).filter(
            Q(raised_at__lt=moment) | Q(id__lt=alert_id)
        )
    return list(alerts.order_by("-raised_at", "-id")[: count + 1])
