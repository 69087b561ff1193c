"""A database made by the migrations of the previous release, with rows in every table,
upgrades to the present layout (alerts and deliveries in their own apps, devices and place
membership in clinical) without losing or changing a row."""

from __future__ import annotations

from datetime import UTC, datetime

import factory
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import User
from alerts.models import AlarmLimit, Alert, AlertEvent
from clinical.models import Device, Patient, Place, Ward
from monitoring.models import Reading
from notifications.models import AlertNotification
from testing.factories import AlarmLimitFactory

# The leaf migrations of the release before the redesign.
PREVIOUS_RELEASE = [
    ("accounts", "0002_initial"),
    ("clinical", "0003_alarm_limits"),
    ("monitoring", "0001_initial"),
]
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor


def _rows_of_previous_release(apps) -> dict[str, int]:
    """One row in each table, written with the models as the previous release had them."""
    place = apps.get_model("clinical", "Place").objects.create(name="Old Hospital")
    ward = apps.get_model("clinical", "Ward").objects.create(place=place, name="Labour")
    patient = apps.get_model("clinical", "Patient").objects.create(
        name="Asha", mrn="M-1", sex="F", place=place, ward=ward, monitoring_profile="obstetric"
    )
    user = apps.get_model("accounts", "User").objects.create(
        email="nurse@old.example", role="nurse"
    )
    user.places.add(place)
    device = apps.get_model("monitoring", "Device").objects.create(
        serial="OLD-1", place=place, patient=patient, token_hash="h" * 64
    )
    reading = apps.get_model("monitoring", "Reading").objects.create(
        patient=patient, device=device, metric="heart_rate", bpm=88, recorded_at=T0, seq=1
    )
    alert = apps.get_model("clinical", "Alert").objects.create(
        patient=patient, device=device, kind="bradycardia", priority="high", message="low"
    )
    event = apps.get_model("clinical", "AlertEvent").objects.create(alert=alert, action="raised")
    apps.get_model("clinical", "AlertNotification").objects.create(
        event=event, channel="email", recipient="nurse@old.example"
    )
    # The factory's field values, on the model of the previous release.
    limit = factory.build(dict, FACTORY_CLASS=AlarmLimitFactory, patient=patient, brady_high=45)
    apps.get_model("clinical", "AlarmLimit").objects.create(**limit)
    return {
        "place": place.id,
        "patient": patient.id,
        "user": user.id,
        "device": device.id,
        "reading": reading.id,
        "alert": alert.id,
        "event": event.id,
    }


@pytest.mark.django_db(transaction=True)
def test_the_previous_release_upgrades_without_losing_a_row():
    executor = _migrate(PREVIOUS_RELEASE)
    ids = _rows_of_previous_release(executor.loader.project_state(PREVIOUS_RELEASE).apps)
    try:
        _migrate(executor.loader.graph.leaf_nodes())

        user = User.objects.get(id=ids["user"])
        place = Place.objects.get(id=ids["place"])
        assert list(user.places.all()) == [place]
        assert list(place.members.all()) == [user]
        assert Ward.objects.get(place=place).name == "Labour"
        device = Device.objects.get(id=ids["device"])
        assert (device.serial, device.patient_id) == ("OLD-1", ids["patient"])
        assert Patient.objects.get(id=ids["patient"]).device == device
        reading = Reading.objects.get(id=ids["reading"])
        assert (reading.device_id, reading.value, reading.recorded_at) == (device.id, 88, T0)
        alert = Alert.objects.get(id=ids["alert"])
        assert (alert.device_id, alert.kind, alert.priority) == (device.id, "bradycardia", "high")
        event = AlertEvent.objects.get(id=ids["event"])
        assert event.alert_id == alert.id
        delivery = AlertNotification.objects.get(event=event)
        assert delivery.recipient == "nurse@old.example"
        assert AlarmLimit.objects.get(patient_id=ids["patient"]).brady_high == 45
        # New rows still get fresh ids from the kept tables and sequences.
        assert (
            Alert.objects.create(
                patient_id=ids["patient"], kind="tachycardia", priority="low", message="m"
            ).id
            > alert.id
        )
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
