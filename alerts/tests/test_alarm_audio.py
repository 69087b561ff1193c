"""Central-station alarm audio (IEC 60601-1-8): paused for the place's time, recorded with who
paused it, re-sounding on a new high alarm; off only for admins; the ward's dashboards told."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from alerts import services
from alerts.models import AlarmAudioPause
from testing.assertions import assert_error
from testing.factories import PatientFactory, WardFactory
from testing.ws import dashboard_connect, receive_type, subscribe

pytestmark = pytest.mark.django_db


def url(ward, action: str = "") -> str:
    return f"/api/wards/{ward.id}/alarm-audio/{action}"


def test_a_nurse_pauses_the_wards_audio_for_the_places_time(nurse_api, nurse, ward):
    assert nurse_api.get(url(ward)).json() == {
        "ward": ward.id,
        "state": "sounding",
        "pause_seconds": 120,
        "pause": None,
    }
    response = nurse_api.post(url(ward, "pause/"))
    assert response.status_code == 201, response.content
    state = response.json()
    assert state["state"] == "paused"
    assert state["pause"]["by"] == {"id": nurse.id, "name": nurse.get_full_name() or nurse.email}
    assert 119 <= state["pause"]["remaining_seconds"] <= 120
    assert nurse_api.get(url(ward)).json()["state"] == "paused"
    (record,) = AlarmAudioPause.objects.all()
    assert record.by == nurse and record.mode == "paused"
    assert record.ends_at is not None
    assert record.ends_at - record.started_at == timedelta(seconds=120)


def test_the_pause_time_is_set_per_place(admin_api, nurse_api, place, ward):
    response = admin_api.patch(f"/api/places/{place.id}/", {"alarm_audio_pause_seconds": 60})
    assert response.status_code == 200 and response.json()["alarm_audio_pause_seconds"] == 60
    assert nurse_api.post(url(ward, "pause/")).json()["pause"]["remaining_seconds"] == 60
    for bad in (0, 5, 3600):
        response = admin_api.patch(f"/api/places/{place.id}/", {"alarm_audio_pause_seconds": bad})
        assert_error(response, 400, "validation_error")


def test_a_pause_ends_by_itself(nurse_api, ward):
    nurse_api.post(url(ward, "pause/"))
    AlarmAudioPause.objects.update(ends_at=timezone.now() - timedelta(seconds=1))
    assert nurse_api.get(url(ward)).json()["state"] == "sounding"


def test_resume_is_recorded_with_who(nurse_api, doctor_api, doctor, ward):
    nurse_api.post(url(ward, "pause/"))
    state = doctor_api.post(url(ward, "resume/")).json()
    assert state["state"] == "sounding"
    record = AlarmAudioPause.objects.get()
    assert record.ended_by == doctor and record.end_reason == "resumed"
    history = doctor_api.get(url(ward, "history/")).json()
    assert [h["end_reason"] for h in history["results"]] == ["resumed"]


def test_a_new_high_alarm_in_the_ward_ends_the_pause(nurse_api, ward, patient):
    nurse_api.post(url(ward, "pause/"))
    other_ward_patient = PatientFactory(ward=WardFactory(place=ward.place))
    services.alert_raise(
        patient_id=other_ward_patient.id, kind="bradycardia", priority="high", message="x"
    )
    services.alert_raise(patient_id=patient.id, kind="tachycardia", priority="medium", message="x")
    assert nurse_api.get(url(ward)).json()["state"] == "paused"  # other ward; not high
    services.alert_raise(patient_id=patient.id, kind="bradycardia", priority="high", message="x")
    assert nurse_api.get(url(ward)).json()["state"] == "sounding"
    assert AlarmAudioPause.objects.get().end_reason == "new_alarm"


def test_audio_off_only_for_admins_and_it_stays_off(
    nurse_api, admin_api, admin_user, ward, patient
):
    assert_error(nurse_api.post(url(ward, "pause/"), {"mode": "off"}), 403, "audio_off_not_allowed")
    state = admin_api.post(url(ward, "pause/"), {"mode": "off"}).json()
    assert state["state"] == "off" and state["pause"]["ends_at"] is None
    services.alert_raise(patient_id=patient.id, kind="bradycardia", priority="high", message="x")
    assert nurse_api.get(url(ward)).json()["state"] == "off"
    assert nurse_api.post(url(ward, "resume/")).json()["state"] == "sounding"
    assert_error(nurse_api.post(url(ward, "pause/"), {"mode": "loud"}), 400, "validation_error")


def test_another_places_ward_is_not_found(nurse_api):
    other = WardFactory()
    for action in ("", "history/"):
        assert_error(nurse_api.get(url(other, action)), 404, "not_found")
    for action in ("pause/", "resume/"):
        assert_error(nurse_api.post(url(other, action)), 404, "not_found")
    assert not AlarmAudioPause.objects.exists()


@pytest.mark.django_db(transaction=True)
async def test_every_dashboard_on_the_ward_is_told(nurse, ward):
    from rest_framework.test import APIClient

    from testing.clients import bearer_client

    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    client: APIClient = await sync_to_async(bearer_client)(nurse)
    response = await sync_to_async(client.post)(url(ward, "pause/"))
    assert response.status_code == 201
    frame = await receive_type(watcher, "audio")
    assert frame["ward"] == ward.id and frame["state"] == "paused"
    assert frame["pause"]["by"]["id"] == nurse.id
    await sync_to_async(client.post)(url(ward, "resume/"))
    frame = await receive_type(watcher, "audio")
    assert frame["state"] == "sounding" and frame["pause"] is None
    await watcher.disconnect()
