"""The evaluator's per-batch reads of alarm limits, written without the ORM: they must give
what the model instances give."""

from __future__ import annotations

import pytest

from alerts.ctg_rules import CTG_LIMIT_FIELDS, CtgLimits, ctg_default_limits
from alerts.models import AlarmLimit, CtgAlarmLimit
from alerts.rules import Limits, default_limits
from alerts.selectors import LIMIT_VALUE_FIELDS, ctg_limits_for_patients, limits_for_patients
from clinical.selectors import patient_profiles
from testing.factories import AlarmLimitFactory, PatientFactory

pytestmark = pytest.mark.django_db


def test_limits_of_a_batch_are_the_patients_own_else_the_defaults(django_assert_num_queries):
    own = PatientFactory(monitoring_profile="adult")
    plain = PatientFactory(monitoring_profile="obstetric")
    AlarmLimitFactory(patient=own, metric="heart_rate", brady_high=35, tachy_low=None)
    row = AlarmLimit.objects.get(patient=own)

    with django_assert_num_queries(2):
        limits = limits_for_patients([own.id, plain.id, 999_999])

    expected = Limits(
        metric="heart_rate", source="patient", **{f: getattr(row, f) for f in LIMIT_VALUE_FIELDS}
    )
    assert limits[own.id] == {"heart_rate": expected}
    assert limits[own.id]["heart_rate"].source == "patient"
    assert limits[own.id]["heart_rate"].brady_high == 35
    assert limits[own.id]["heart_rate"].tachy_low is None
    assert limits[plain.id] == {
        metric: default_limits(profile="obstetric", metric=metric) for metric in limits[plain.id]
    }
    assert set(limits[plain.id]) == {"heart_rate", "fetal_heart_rate"}
    assert 999_999 not in limits


def test_patient_profiles_of_no_patients_costs_no_query(django_assert_num_queries):
    patient = PatientFactory(monitoring_profile="obstetric")
    with django_assert_num_queries(0):
        assert patient_profiles(patient_ids=[]) == {}
    assert patient_profiles(patient_ids=[patient.id]) == {patient.id: "obstetric"}


def test_ctg_limits_are_the_patients_own_else_the_defaults():
    own = PatientFactory(monitoring_profile="obstetric")
    plain = PatientFactory(monitoring_profile="obstetric")
    values = {**ctg_default_limits().as_dict(), "signal_loss_percent": 30, "coincidence_bpm": None}
    values.pop("source")
    CtgAlarmLimit.objects.create(patient=own, **values)

    limits = ctg_limits_for_patients([own.id, plain.id])

    assert limits[own.id] == CtgLimits(**{f: values[f] for f in CTG_LIMIT_FIELDS})
    assert limits[own.id].source == "patient"
    assert limits[own.id].signal_loss_percent == 30 and limits[own.id].coincidence_bpm is None
    assert limits[plain.id] == ctg_default_limits() and limits[plain.id].source == "default"
