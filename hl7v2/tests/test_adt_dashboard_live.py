"""Open dashboards follow the hospital's ADT feed at once: real Daphne, a real MLLP listener
process, real WebSocket clients. A01 shows the new patient to their ward, A02 moves them (the
old ward drops the tile, the new one shows it), A08 renames them, A03 takes them off the ward;
a move to another place ends the view of a viewer who may not look there and shows the patient
to that place's viewers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from hl7v2.mllp import mllp_exchange
from testing.hl7 import adt_message
from testing.live import live_dashboard
from testing.processes import Hl7Listener, django_run

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

SEED = """
from rest_framework_simplejwt.tokens import AccessToken
from hl7v2.models import Hl7Sender
from testing.factories import PlaceFactory, UserFactory, WardFactory
place = PlaceFactory()
icu = WardFactory(place=place, name="ICU")
maternity = WardFactory(place=place, name="MATERNITY")
other_place = PlaceFactory()
antenatal = WardFactory(place=other_place, name="ANTENATAL")
nurse = UserFactory(places=[place])
outsider = UserFactory(places=[other_place])
admin = UserFactory(role="admin")
Hl7Sender.objects.create(place=place, name="PAS", address="127.0.0.1", sending_application="PAS")
result = {
    "place": place.id, "icu": icu.id, "maternity": maternity.id,
    "other_place": other_place.id, "antenatal": antenatal.id,
    "nurse": str(AccessToken.for_user(nurse)),
    "outsider": str(AccessToken.for_user(outsider)),
    "admin": str(AccessToken.for_user(admin)),
}
"""


async def frame(ws: ClientConnection, wait: float = 30) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), wait))


async def adt(port: int, *messages: str) -> None:
    answers = await mllp_exchange("127.0.0.1", port, list(messages))
    assert all("MSA|AA|" in answer for answer in answers), answers


def patch_patient(url: str, token: str, patient: int, body: dict[str, Any]) -> int:
    import urllib.request

    request = urllib.request.Request(
        f"{url}/api/patients/{patient}/",
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return int(response.status)


async def test_adt_admit_move_update_discharge_reach_open_dashboards(
    daphne_factory, live_env, tmp_path
):
    seed = django_run(live_env, SEED)
    server = daphne_factory()
    listener = Hl7Listener(live_env, tmp_path / "hl7.log").wait_ready()
    url = server.url("/ws/dashboard/")
    try:
        icu = await live_dashboard(url, seed["nurse"], seed["icu"])
        maternity = await live_dashboard(url, seed["nurse"], seed["maternity"])

        # A01: the ICU's viewers see the new patient, in their bed.
        await adt(listener.port, adt_message("A01", "LIVE-1", mrn="MRN-L", ward="ICU", bed="7"))
        admitted = await frame(icu)
        assert (admitted["type"], admitted["action"], admitted["ward"]) == (
            "patient",
            "admitted",
            seed["icu"],
        )
        entry = admitted["entry"]
        assert (entry["name"], entry["bed"], entry["ward"]) == ("ADA LOVELACE", "7", seed["icu"])
        patient = admitted["patient"]
        assert entry["id"] == patient

        # Someone watches the patient alone too (their own view follows them).
        watcher = await live_dashboard(url, seed["nurse"], seed["icu"])
        await watcher.send(json.dumps({"type": "subscribe", "patient": patient}))
        assert (await frame(watcher))["type"] == "snapshot"
        await watcher.send(json.dumps({"type": "unsubscribe", "ward": seed["icu"]}))
        assert (await frame(watcher))["type"] == "unsubscribed"

        # A02: the ICU drops the tile (where it went, no more), the maternity ward shows it.
        await adt(
            listener.port, adt_message("A02", "LIVE-2", mrn="MRN-L", ward="MATERNITY", bed="3")
        )
        left = await frame(icu)
        assert (left["action"], left["ward"], left["from_ward"], left["entry"]) == (
            "moved",
            seed["maternity"],
            seed["icu"],
            None,
        )
        arrived = await frame(maternity)
        assert (arrived["action"], arrived["entry"]["bed"], arrived["entry"]["ward"]) == (
            "moved",
            "3",
            seed["maternity"],
        )
        followed = await frame(watcher)
        assert (followed["action"], followed["entry"]["bed"]) == ("moved", "3")

        # A08: a new name, on the maternity ward and the patient's own view.
        await adt(listener.port, adt_message("A08", "LIVE-3", mrn="MRN-L", name="KING^ADA"))
        for ws in (maternity, watcher):
            renamed = await frame(ws)
            assert (renamed["action"], renamed["entry"]["name"]) == ("updated", "ADA KING")

        # A03: off the ward.
        await adt(listener.port, adt_message("A03", "LIVE-4", mrn="MRN-L", ward="MATERNITY"))
        for ws in (maternity, watcher):
            discharged = await frame(ws)
            assert (discharged["action"], discharged["patient"]) == ("discharged", patient)

        # Readmitted to the ICU: the ICU's next frame is this one, so it heard nothing of the
        # rename and the discharge on another ward.
        readmit = adt_message("A01", "LIVE-5", mrn="MRN-L", ward="ICU", bed="2", name="KING^ADA")
        await adt(listener.port, readmit)
        back = await frame(icu)
        assert (back["action"], back["entry"]["bed"], back["entry"]["name"]) == (
            "admitted",
            "2",
            "ADA KING",
        )
        assert (await frame(watcher))["action"] == "admitted"

        # Moved to another place (REST, by an administrator): the place's viewers see the
        # patient arrive; the nurse, who may not look there, loses the tile and the view.
        antenatal = await live_dashboard(url, seed["outsider"], seed["antenatal"])
        status = await asyncio.to_thread(
            patch_patient,
            server.url("", scheme="http"),
            seed["admin"],
            patient,
            {"place": seed["other_place"], "ward": seed["antenatal"], "bed": "1"},
        )
        assert status == 200
        there = await frame(antenatal)
        assert (there["action"], there["entry"]["ward"], there["entry"]["bed"]) == (
            "moved",
            seed["antenatal"],
            "1",
        )
        gone = await frame(icu)
        assert (gone["action"], gone["ward"], gone["entry"]) == ("moved", None, None)
        unseen = await frame(watcher)
        assert (unseen["ward"], unseen["entry"]) == (None, None)
        withdrawn = await frame(watcher)
        assert (withdrawn["type"], withdrawn["error"]["code"], withdrawn["patient"]) == (
            "error",
            "forbidden",
            patient,
        )
        for ws in (icu, maternity, watcher, antenatal):
            await ws.close()
    finally:
        listener.stop()
