from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from clinical.models import Device
from clinical.tokens import token_hash
from monitoring.models import Reading
from testing.factories import DeviceFactory, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = User.objects.create_superuser("root@example.org", "Str0ng-Passw0rd!")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reading(device) -> Reading:
    """One heart-rate reading of 88 bpm from ``device``."""
    return Reading.objects.create(
        patient=device.patient,
        device=device,
        metric="heart_rate",
        value=88,
        recorded_at=timezone.now(),
        seq=1,
    )


def test_device_and_reading_changelists_render(staff, device, reading):
    response = staff.get("/admin/clinical/device/?is_active__exact=1&q=" + device.serial)
    assert response.status_code == 200
    assert device.serial in response.content.decode()
    response = staff.get("/admin/monitoring/reading/?metric__exact=heart_rate")
    assert response.status_code == 200
    assert "88" in response.content.decode()


def test_readings_are_read_only_in_admin(staff, reading):
    assert staff.get("/admin/monitoring/reading/add/").status_code == 403
    response = staff.post(f"/admin/monitoring/reading/{reading.id}/change/", {"value": 200})
    assert response.status_code == 403
    assert (
        staff.post(f"/admin/monitoring/reading/{reading.id}/delete/", {"post": "yes"}).status_code
        == 403
    )
    reading.refresh_from_db()
    assert reading.value == 88


def test_adding_a_device_in_admin_shows_its_token_once(staff, place, patient):
    response = staff.post(
        "/admin/clinical/device/add/",
        {
            "serial": "ADM-1",
            "model": "Keyar",
            "place": place.id,
            "patient": patient.id,
            "is_active": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    device = Device.objects.get(serial="ADM-1")
    token = re.search(
        r"shown only now, store it on the device\): (\S+?)<", response.content.decode()
    )
    assert token, response.content.decode()[:2000]
    assert device.token_hash == token_hash(token.group(1))
    assert (
        "token_hash"
        not in staff.get(f"/admin/clinical/device/{device.id}/change/").content.decode()
    )


def test_admin_form_refuses_a_second_device_for_a_patient(staff, device, place):
    response = staff.post(
        "/admin/clinical/device/add/",
        {"serial": "ADM-2", "place": place.id, "patient": device.patient_id, "is_active": "on"},
    )
    assert response.status_code == 200  # the form again, with an error
    assert not Device.objects.filter(serial="ADM-2").exists()
    assert device.serial in response.content.decode()


def test_admin_edit_goes_through_the_service(staff, place):
    device = DeviceFactory(patient=None, place=place, model="old")
    patient = PatientFactory(ward__place=place)
    response = staff.post(
        f"/admin/clinical/device/{device.id}/change/",
        {"serial": device.serial, "model": "new", "place": place.id, "patient": patient.id},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    device.refresh_from_db()
    assert (device.model, device.patient_id, device.is_active) == ("new", patient.id, False)


def test_admin_actions_rotate_and_toggle(staff, device):
    old_hash = device.token_hash
    staff.post(
        "/admin/clinical/device/",
        {"action": "rotate_tokens", "_selected_action": [device.id]},
    )
    staff.post(
        "/admin/clinical/device/",
        {"action": "toggle_active", "_selected_action": [device.id]},
    )
    device.refresh_from_db()
    assert device.token_hash != old_hash
    assert device.is_active is False
