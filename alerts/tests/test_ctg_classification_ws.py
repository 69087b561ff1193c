"""The latest CTG classification on the dashboard channel: a live ``ctg`` frame when the
evaluator computes a new one, for the dashboards that watch the patient's ward or the patient
only, and in every snapshot (from the database, so a dashboard that reconnects, or one served
by a restarted web process, gets it)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from alerts.models import CtgClassification
from alerts.tests.test_ctg_alarms import Monitor
from alerts.tests.test_ctg_classification import insufficient_signal_ctg
from testing.factories import PatientFactory, UserFactory, WardFactory
from testing.ws import dashboard_connect, receive_type, subscribe

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("clean_alarm_state"),
]


async def test_a_new_classification_reaches_its_ward_and_patient_watchers_only(
    nurse, ward, alarms_drain
):
    mother = await sync_to_async(PatientFactory)(ward=ward, monitoring_profile="obstetric")
    neighbour = await sync_to_async(PatientFactory)(ward=ward)
    monitor = await sync_to_async(Monitor)(alarms_drain, patient=mother)
    elsewhere = await sync_to_async(WardFactory)()
    stranger = await sync_to_async(UserFactory)(places=[elsewhere.place])

    by_ward = await dashboard_connect(nurse)
    await subscribe(by_ward, ward=ward.id)
    by_patient = await dashboard_connect(nurse)
    await subscribe(by_patient, patient=mother.id)
    next_bed = await dashboard_connect(nurse)  # same ward group, another patient
    await subscribe(next_bed, patient=neighbour.id)
    outsider = await dashboard_connect(stranger)
    await subscribe(outsider, ward=elsewhere.id)
    refused = await subscribe(outsider, ward=ward.id)
    assert refused["error"]["code"] == "not_found"

    await sync_to_async(monitor.feed)(0, 30)  # stored, then evaluated: insufficient signal
    row = await CtgClassification.objects.aget(patient=mother)
    expected = {
        "type": "ctg",
        "patient": mother.id,
        "ward": ward.id,
        "ctg": insufficient_signal_ctg(row),
    }
    assert await receive_type(by_ward, "ctg") == expected
    assert await receive_type(by_patient, "ctg") == expected
    # The neighbour's watcher hears the readings of the ward group but no classification.
    frames = []
    while not await next_bed.receive_nothing(timeout=0.5):
        frames.append((await next_bed.receive_json_from())["type"])
    assert "ctg" not in frames
    assert await outsider.receive_nothing(timeout=0.5)

    # A dashboard that (re)connects finds it in its snapshot; a patient without one: null.
    await by_ward.disconnect()
    again = await dashboard_connect(nurse)
    snapshot = await subscribe(again, ward=ward.id)
    entries = {p["id"]: p for p in snapshot["patients"]}
    assert entries[mother.id]["ctg"] == expected["ctg"]
    assert entries[neighbour.id]["ctg"] is None
    snapshot = await subscribe(again, patient=mother.id)
    assert snapshot["patients"][0]["ctg"] == expected["ctg"]
    for c in (again, by_patient, next_bed, outsider):
        await c.disconnect()
