"""Strip notes: POST/GET /api/patients/<id>/notes/, correction by the author within the window,
addenda afterwards, place scoping, and the live ``note`` frame."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import jsonschema
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from monitoring.asyncapi import asyncapi_document
from monitoring.models import StripNote
from testing.assertions import assert_error
from testing.clients import bearer_client
from testing.factories import PatientFactory, PlaceFactory, UserFactory, WardFactory
from testing.ws import dashboard_connect, receive_type, subscribe

NOTE_FIELDS = {
    "id",
    "patient",
    "at",
    "text",
    "author",
    "created_at",
    "edited_at",
    "editable_until",
    "addenda",
}


def _url(patient, suffix: str = "") -> str:
    return f"/api/patients/{patient.id}/notes/{suffix}"


def _post(client, patient, text: str = "Vaginal examination 6 cm", at=None):
    at = at or timezone.now() - timedelta(minutes=2)
    return client.post(_url(patient), {"at": at.isoformat(), "text": text}, format="json")


@pytest.mark.django_db
class TestNotesRest:
    def test_a_note_is_written_with_its_author_and_time(self, nurse_api, nurse, patient):
        at = timezone.now() - timedelta(minutes=3)
        response = _post(nurse_api, patient, at=at)
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == NOTE_FIELDS
        assert body["text"] == "Vaginal examination 6 cm"
        assert body["author"] == {"id": nurse.id, "name": nurse.get_full_name()}
        assert body["patient"] == patient.id and body["addenda"] == []
        note = StripNote.objects.get(id=body["id"])
        assert note.at == at and note.author_id == nurse.id and note.edited_at is None
        assert abs((note.created_at - timezone.now()).total_seconds()) < 60

    def test_list_is_bounded_by_from_and_to_newest_first(self, nurse_api, patient):
        now = timezone.now()
        for minutes, text in [(50, "epidural"), (30, "position changed"), (10, "oxytocin up")]:
            assert (
                _post(nurse_api, patient, text, at=now - timedelta(minutes=minutes)).status_code
                == 201
            )
        start = quote((now - timedelta(minutes=40)).isoformat())
        end = quote((now - timedelta(minutes=5)).isoformat())
        response = nurse_api.get(_url(patient) + f"?from={start}&to={end}")
        assert response.status_code == 200
        assert [n["text"] for n in response.json()["results"]] == [
            "oxytocin up",
            "position changed",
        ]

    def test_bad_input_gets_the_error_shape(self, nurse_api, patient):
        assert_error(
            nurse_api.post(_url(patient), {"text": "no time"}, format="json"),
            400,
            "validation_error",
        )
        assert_error(_post(nurse_api, patient, text="   "), 400, "validation_error")
        assert_error(_post(nurse_api, patient, text="x" * 1001), 400, "validation_error")
        naive = nurse_api.post(
            _url(patient), {"at": "2026-01-01T10:00:00", "text": "a"}, format="json"
        )
        assert_error(naive, 400, "validation_error")
        future = _post(nurse_api, patient, at=timezone.now() + timedelta(hours=1))
        assert_error(future, 400, "validation_error")
        assert_error(nurse_api.get(_url(patient) + "?from=yesterday"), 400, "validation_error")
        assert not StripNote.objects.exists()

    def test_another_place_sees_nothing_and_writes_nothing(self, nurse_api, patient):
        elsewhere = PatientFactory(ward=WardFactory(place=PlaceFactory()))
        outsider = bearer_client(UserFactory(role="nurse", places=[elsewhere.place]))
        assert _post(nurse_api, patient).status_code == 201
        assert_error(_post(outsider, patient), 404, "not_found")
        assert_error(outsider.get(_url(patient)), 404, "not_found")
        note_id = StripNote.objects.get().id
        assert_error(
            outsider.post(_url(patient, f"{note_id}/addenda/"), {"text": "x"}, format="json"), 404
        )
        # A note is reached only through its own patient.
        own_other = PatientFactory(ward=patient.ward)
        assert_error(nurse_api.get(_url(own_other, f"{note_id}/")), 404, "not_found")
        assert_error(bearer_client(UserFactory(role="nurse")).get(_url(patient)), 404)

    def test_the_author_corrects_within_the_window_then_only_addenda(
        self, nurse_api, doctor_api, doctor, patient
    ):
        note_id = _post(nurse_api, patient, "epidral").json()["id"]
        response = nurse_api.patch(
            _url(patient, f"{note_id}/"), {"text": "epidural"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["text"] == "epidural" and response.json()["edited_at"] is not None
        # Someone else may not change it.
        assert_error(
            doctor_api.patch(_url(patient, f"{note_id}/"), {"text": "x"}, format="json"),
            403,
            "note_not_author",
        )
        # After the window even the author may not.
        StripNote.objects.filter(id=note_id).update(
            created_at=timezone.now() - timedelta(minutes=16)
        )
        assert_error(
            nurse_api.patch(_url(patient, f"{note_id}/"), {"text": "x"}, format="json"),
            409,
            "note_locked",
        )
        response = doctor_api.post(
            _url(patient, f"{note_id}/addenda/"), {"text": "Top-up at 11:40"}, format="json"
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["text"] == "epidural"  # the original is kept
        assert [(a["text"], a["author"]["id"]) for a in body["addenda"]] == [
            ("Top-up at 11:40", doctor.id)
        ]
        # Addenda are not notes of their own in the list.
        listed = nurse_api.get(_url(patient)).json()["results"]
        assert [n["id"] for n in listed] == [note_id] and len(listed[0]["addenda"]) == 1

    def test_an_annotated_note_is_locked_even_within_the_window(
        self, nurse_api, doctor_api, patient
    ):
        note_id = _post(nurse_api, patient).json()["id"]
        doctor_api.post(_url(patient, f"{note_id}/addenda/"), {"text": "agreed"}, format="json")
        assert_error(
            nurse_api.patch(_url(patient, f"{note_id}/"), {"text": "x"}, format="json"),
            409,
            "note_locked",
        )

    def test_the_window_is_a_setting(self, settings, nurse_api, patient):
        settings.NOTE_EDIT_MINUTES = 0
        note_id = _post(nurse_api, patient).json()["id"]
        assert_error(
            nurse_api.patch(_url(patient, f"{note_id}/"), {"text": "x"}, format="json"), 409
        )


def _note_frame_schema() -> dict:
    document = asyncapi_document()
    schema = dict(document["components"]["messages"]["NoteFrame"]["payload"])
    schema["components"] = document["components"]
    return schema


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_note_reaches_the_ward_and_patient_dashboards_and_no_outsider(
    nurse, doctor, patient
):
    ward_view = await dashboard_connect(nurse)
    await subscribe(ward_view, ward=patient.ward_id)
    patient_view = await dashboard_connect(doctor)
    await subscribe(patient_view, patient=patient.id)
    other_ward = await sync_to_async(WardFactory)(place=patient.place)
    elsewhere = await dashboard_connect(nurse)
    await subscribe(elsewhere, ward=other_ward.id)

    client = await sync_to_async(bearer_client)(nurse)
    response = await sync_to_async(_post)(client, patient, "fetal scalp electrode on")
    assert response.status_code == 201
    schema = _note_frame_schema()
    for watcher in (ward_view, patient_view):
        frame = await receive_type(watcher, "note")
        jsonschema.validate(frame, schema)
        assert frame["patient"] == patient.id and frame["action"] == "created"
        assert frame["note"] == response.json()
    assert await elsewhere.receive_nothing(timeout=0.5)

    note_id = response.json()["id"]
    doctor_client = await sync_to_async(bearer_client)(doctor)
    await sync_to_async(doctor_client.post)(
        _url(patient, f"{note_id}/addenda/"), {"text": "FSE reading well"}, format="json"
    )
    frame = await receive_type(patient_view, "note")
    jsonschema.validate(frame, schema)
    assert frame["action"] == "annotated"
    assert [a["text"] for a in frame["note"]["addenda"]] == ["FSE reading well"]
    for watcher in (ward_view, patient_view, elsewhere):
        await watcher.disconnect()
