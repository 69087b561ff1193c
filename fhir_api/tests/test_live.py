"""End to end on a real Daphne (``-m live``): a device's reading over the WebSocket comes back
as an Observation over real HTTP, with the FHIR media type and headers a client sees."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from fhir_api.tests.validation import assert_heart_rate_profile, assert_r4
from testing.live import live_device
from testing.processes import django_run
from testing.ws import reading

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

SEED = """
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, UserFactory, WardFactory
from rest_framework_simplejwt.tokens import AccessToken
place = PlaceFactory()
nurse = UserFactory(places=[place])
outsider = UserFactory(places=[PlaceFactory()])
device = DeviceFactory(patient=PatientFactory(ward=WardFactory(place=place)))
result = {"device": device.id, "token": device.token, "patient": device.patient_id,
          "nurse": str(AccessToken.for_user(nurse)),
          "outsider": str(AccessToken.for_user(outsider))}
"""


def http_get(url: str, token: str | None = None) -> tuple[int, str, dict[str, Any]]:
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], json.load(error)


async def test_a_device_reading_is_served_as_an_observation(live_env, daphne_factory):
    data = await asyncio.to_thread(django_run, live_env, SEED)
    server = await asyncio.to_thread(daphne_factory)
    device = await live_device(server.url("/ws/devices/"), data["token"])
    await device.send(json.dumps({"type": "reading", **reading(1, bpm=47)}))
    assert json.loads(await device.recv()) == {"type": "ack", "seqs": [1]}
    await device.close()

    search = server.url(f"/fhir/Observation?patient={data['patient']}&code=8867-4", "http")
    status, content_type, bundle = await asyncio.to_thread(http_get, search, data["nurse"])
    assert (status, content_type) == (200, "application/fhir+json")
    assert_r4(bundle, "Bundle")
    (entry,) = bundle["entry"]
    observation = entry["resource"]
    assert_heart_rate_profile(observation)
    assert observation["valueQuantity"]["value"] == 47
    assert observation["device"] == {"reference": f"Device/{data['device']}"}
    assert entry["fullUrl"] == server.url(f"/fhir/Observation/{observation['id']}", "http")

    status, _, read = await asyncio.to_thread(http_get, entry["fullUrl"], data["nurse"])
    assert (status, read) == (200, observation)
    status, _, outcome = await asyncio.to_thread(http_get, entry["fullUrl"], data["outsider"])
    assert status == 404
    assert assert_r4(outcome, "OperationOutcome")["issue"][0]["code"] == "not-found"
    status, _, outcome = await asyncio.to_thread(http_get, entry["fullUrl"])
    assert (status, outcome["issue"][0]["code"]) == (401, "login")
    status, _, statement = await asyncio.to_thread(http_get, server.url("/fhir/metadata", "http"))
    assert (status, statement["fhirVersion"]) == (200, "4.0.1")
