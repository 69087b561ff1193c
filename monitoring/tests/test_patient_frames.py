"""The ``patient`` frame: admissions, moves, updates and discharges made through REST and the
Django admin reach the dashboards of the ward (before and after) at once, once committed; a
change rolled back is never heard of. (The HL7 ADT path, with real clients:
hl7v2/tests/test_adt_dashboard_live.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.models import User
from clinical.models import Patient
from clinical.services import patient_update
from testing.clients import bearer_client
from testing.factories import PatientFactory, WardFactory
from testing.ws import dashboard_connect, receive_type, subscribe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def watching(user, ward) -> WebsocketCommunicator:
    dashboard = await dashboard_connect(user)
    assert (await subscribe(dashboard, ward=ward.id))["type"] == "snapshot"
    return dashboard


async def test_rest_admission_move_update_and_discharge(admin_user, nurse, ward):
    other = await sync_to_async(WardFactory)(place=ward.place)
    here, there = await watching(nurse, ward), await watching(nurse, other)
    api = await sync_to_async(bearer_client)(admin_user)

    body = {"name": "Asha Rao", "mrn": "R-1", "sex": "F", "place": ward.place_id}
    response = await sync_to_async(api.post)(
        "/api/patients/", {**body, "ward": ward.id, "bed": "4"}, format="json"
    )
    assert response.status_code == 201, response.content
    patient = response.json()["id"]
    admitted = await receive_type(here, "patient")
    assert (admitted["action"], admitted["patient"], admitted["entry"]["bed"]) == (
        "admitted",
        patient,
        "4",
    )

    response = await sync_to_async(api.patch)(
        f"/api/patients/{patient}/", {"ward": other.id, "bed": "1"}, format="json"
    )
    assert response.status_code == 200
    left, arrived = await receive_type(here, "patient"), await receive_type(there, "patient")
    assert (left["action"], left["ward"], left["from_ward"], left["entry"]) == (
        "moved",
        other.id,
        ward.id,
        None,
    )
    assert (arrived["action"], arrived["entry"]["bed"]) == ("moved", "1")

    await sync_to_async(api.patch)(f"/api/patients/{patient}/", {"name": "Asha R."}, format="json")
    updated = await receive_type(there, "patient")
    assert (updated["action"], updated["entry"]["name"]) == ("updated", "Asha R.")

    response = await sync_to_async(api.post)(f"/api/patients/{patient}/discharge/", {})
    assert response.status_code == 200, response.content
    assert (await receive_type(there, "patient"))["action"] == "discharged"
    # The first ward heard nothing of the update and the discharge: its next patient frame is
    # the next admission to it (one publisher, one channel: in order).
    response = await sync_to_async(api.post)(
        "/api/patients/", {**body, "mrn": "R-2", "ward": ward.id, "bed": "5"}, format="json"
    )
    assert response.status_code == 201
    after = await receive_type(here, "patient")
    assert (after["action"], after["patient"]) == ("admitted", response.json()["id"])
    await here.disconnect()
    await there.disconnect()


async def test_a_move_in_the_admin_reaches_the_dashboards(nurse, ward, patient):
    other = await sync_to_async(WardFactory)(place=ward.place)
    there = await watching(nurse, other)

    def move() -> int:
        staff = Client()
        staff.force_login(User.objects.create_superuser("root@example.org", "Str0ng-Passw0rd!"))
        at = timezone.localtime(timezone.now() - timedelta(hours=1))
        response = staff.post(
            f"/admin/clinical/patient/{patient.id}/change/",
            {
                "name": patient.name,
                "mrn": patient.mrn,
                "sex": patient.sex,
                "monitoring_profile": patient.monitoring_profile,
                "place": patient.place_id,
                "ward": other.id,
                "bed": "12",
                "admitted_at_0": at.strftime("%Y-%m-%d"),
                "admitted_at_1": at.strftime("%H:%M:%S"),
            },
        )
        return response.status_code

    assert await sync_to_async(move)() == 302
    arrived = await receive_type(there, "patient")
    assert (arrived["action"], arrived["patient"], arrived["entry"]["bed"]) == (
        "moved",
        patient.id,
        "12",
    )
    await there.disconnect()


async def test_a_change_rolled_back_is_never_announced(nurse, ward):
    patient = await sync_to_async(PatientFactory)(ward=ward, bed="1")
    here = await watching(nurse, ward)

    def move_then_fail() -> None:
        with transaction.atomic():
            patient_update(patient=Patient.objects.get(pk=patient.pk), data={"bed": "2"})
            transaction.set_rollback(True)

    await sync_to_async(move_then_fail)()
    await sync_to_async(patient_update)(
        patient=await sync_to_async(Patient.objects.get)(pk=patient.pk), data={"bed": "3"}
    )
    # The next patient frame is the committed move: the rolled-back one was never published.
    moved = await receive_type(here, "patient")
    assert (moved["action"], moved["entry"]["bed"]) == ("moved", "3")
    await here.disconnect()
