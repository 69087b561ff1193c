from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from testing.clients import bearer_client
from testing.factories import (
    DeviceFactory,
    PatientFactory,
    PlaceFactory,
    UserFactory,
    WardFactory,
)

pytest_plugins = [
    "testing.smtp",
    "testing.celery_eager",
    "testing.live",
    "testing.redis_state",
    "testing.redis_outage",
    "testing.frames",
    "testing.webhooks",
]


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # The production hasher is slow on purpose; tests create users by the hundred. Server
    # processes started by live tests keep the production hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_channel_layer_per_test():
    """Each test runs its own event loop; channels caches one layer per process, whose locks
    and Redis pools bind to the first loop that uses them. A fresh layer per test keeps a
    test's leftovers (a receive cancelled mid-wait) from failing the next test."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _no_stream_deferral():
    """Each test starts with an empty readings backlog (a fresh database), so this process
    does not defer: a test that made Redis fail does not leave the next one deferring. No
    replayer thread: a test replays with ``stream_backlog_replay_due()`` when it means to."""
    from monitoring.stream.backlog import deferral_reset

    deferral_reset(active=False, replayer=False)
    yield
    deferral_reset(active=False, replayer=False)


@pytest.fixture
def alarms_drain():
    """Evaluate what waits in the readings stream, now, in this process: what the evaluator
    process does, called explicitly instead of waiting for it."""
    from alerts.evaluator_process import evaluate_pending

    return evaluate_pending


@pytest.fixture
def place():
    return PlaceFactory()


@pytest.fixture
def ward(place):
    return WardFactory(place=place)


@pytest.fixture
def patient(ward):
    return PatientFactory(ward=ward)


@pytest.fixture
def obstetric_patient(ward):
    return PatientFactory(ward=ward, monitoring_profile="obstetric")


@pytest.fixture
def device(patient):
    return DeviceFactory(patient=patient)


@pytest.fixture
def admin_user():
    return UserFactory(role=Role.ADMIN, email="admin@example.org")


@pytest.fixture
def doctor(place):
    return UserFactory(role=Role.DOCTOR, places=[place], email="doctor@example.org")


@pytest.fixture
def nurse(place):
    return UserFactory(role=Role.NURSE, places=[place], email="nurse@example.org")


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def admin_api(admin_user):
    return bearer_client(admin_user)


@pytest.fixture
def doctor_api(doctor):
    return bearer_client(doctor)


@pytest.fixture
def nurse_api(nurse):
    return bearer_client(nurse)
