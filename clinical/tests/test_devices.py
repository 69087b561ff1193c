from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.permissions import AllowAny

from clinical import services
from clinical.models import Device
from clinical.tokens import token_hash
from common.errors import Conflict
from testing.assertions import assert_error, assert_json
from testing.clients import device_client
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, WardFactory

pytestmark = pytest.mark.django_db

DEVICE_FIELDS = {"id", "serial", "model", "place", "patient", "is_active", "last_seen_at"}


@pytest.fixture
def other_place():
    return PlaceFactory(name="Other Hospital")


@pytest.fixture
def other_device(other_place):
    return DeviceFactory(patient=PatientFactory(ward=WardFactory(place=other_place)))


def _reading(seq: int = 1) -> dict:
    return {
        "seq": seq,
        "metric": "heart_rate",
        "bpm": 80,
        "recorded_at": timezone.now().isoformat(),
    }


# --- Create and the token ---------------------------------------------------------------------


def test_create_returns_token_once_and_stores_only_its_hash(admin_api, place, patient):
    response = admin_api.post(
        "/api/devices/",
        {"serial": "JAN-1", "model": "Keyar", "place": place.id, "patient": patient.id},
    )
    body = assert_json(response, 201)
    assert set(body) == DEVICE_FIELDS | {"token"}
    token = body["token"]
    assert len(token) >= 32
    device = Device.objects.get(pk=body["id"])
    assert device.token_hash == token_hash(token)
    assert token not in device.token_hash
    assert body["patient"] == patient.id and body["is_active"] is True
    assert body["last_seen_at"] is None

    detail = admin_api.get(f"/api/devices/{device.id}/").json()
    assert set(detail) == DEVICE_FIELDS
    listing = admin_api.get("/api/devices/").json()
    assert all("token" not in item for item in listing["results"])
    patched = admin_api.patch(f"/api/devices/{device.id}/", {"model": "Keyar 2"}).json()
    assert "token" not in patched

    # The issued token works for posting readings.
    assert device_client(token).post("/api/records/", _reading()).status_code == 201


def test_doctor_creates_an_unassigned_device_in_their_place(doctor_api, place):
    response = doctor_api.post("/api/devices/", {"serial": "JAN-2", "place": place.id})
    assert response.status_code == 201, response.content
    assert response.json()["patient"] is None
    assert response.json()["model"] == ""


def test_doctor_cannot_create_a_device_in_another_place(doctor_api, other_place):
    response = doctor_api.post("/api/devices/", {"serial": "JAN-3", "place": other_place.id})
    assert_error(response, 400, "validation_error", field="place")
    assert not Device.objects.filter(serial="JAN-3").exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"serial": ""}, "serial"),
        ({"serial": "   "}, "serial"),
        ({"serial": "X" * 65}, "serial"),
        ({}, "serial"),
        ({"serial": "JAN-9", "place": None}, "place"),
        ({"serial": "JAN-9", "place": 999999}, "place"),
        ({"serial": "JAN-9", "patient": 999999}, "patient"),
        ({"serial": "JAN-9", "is_active": "maybe"}, "is_active"),
    ],
)
def test_invalid_device_input_is_400_with_field_details(admin_api, place, payload, field):
    payload = {"place": place.id, **payload}
    assert_error(admin_api.post("/api/devices/", payload), 400, "validation_error", field=field)


def test_serial_conflict_is_409(admin_api, device, place):
    assert_error(
        admin_api.post("/api/devices/", {"serial": device.serial, "place": place.id}),
        409,
        "conflict",
        field="serial",
    )
    other = DeviceFactory(patient=None, place=place)
    response = admin_api.patch(f"/api/devices/{other.id}/", {"serial": device.serial})
    assert_error(response, 409, "conflict")
    other.refresh_from_db()
    assert other.serial != device.serial


def test_a_patient_has_at_most_one_device(admin_api, device, place):
    # Create with a patient that already has a device.
    response = admin_api.post(
        "/api/devices/", {"serial": "JAN-NEW", "place": place.id, "patient": device.patient_id}
    )
    error = assert_error(response, 409, "patient_has_device")
    assert device.serial in error["message"]
    assert "patient" in error["details"]
    assert not Device.objects.filter(serial="JAN-NEW").exists()

    # Assign an existing device to that patient.
    spare = DeviceFactory(patient=None, place=place)
    response = admin_api.patch(f"/api/devices/{spare.id}/", {"patient": device.patient_id})
    error = assert_error(response, 409, "patient_has_device")
    assert device.serial in error["message"]
    spare.refresh_from_db()
    assert spare.patient_id is None

    # Re-saving the device with its own patient is no conflict.
    response = admin_api.patch(f"/api/devices/{device.id}/", {"patient": device.patient_id})
    assert response.status_code == 200


def test_device_and_patient_must_share_a_place(admin_api, place, other_place):
    stranger = PatientFactory(ward=WardFactory(place=other_place))
    response = admin_api.post(
        "/api/devices/", {"serial": "JAN-X", "place": place.id, "patient": stranger.id}
    )
    assert_error(response, 400, "validation_error", field="patient")

    device = DeviceFactory(patient=None, place=place)
    response = admin_api.patch(f"/api/devices/{device.id}/", {"patient": stranger.id})
    assert "patient" in assert_error(response, 400, "validation_error")["details"]

    # Moving an assigned device to another place without its patient is refused too.
    assigned = DeviceFactory(place=place, patient=PatientFactory(ward=WardFactory(place=place)))
    response = admin_api.patch(f"/api/devices/{assigned.id}/", {"place": other_place.id})
    assert "patient" in assert_error(response, 400, "validation_error")["details"]
    # ... but together with a patient of the new place it is fine.
    response = admin_api.patch(
        f"/api/devices/{assigned.id}/", {"place": other_place.id, "patient": stranger.id}
    )
    assert response.status_code == 200, response.content
    assert response.json()["place"] == other_place.id


def test_doctor_cannot_assign_a_patient_they_cannot_see(doctor_api, place, other_place):
    stranger = PatientFactory(ward=WardFactory(place=other_place))
    device = DeviceFactory(patient=None, place=place)
    response = doctor_api.patch(f"/api/devices/{device.id}/", {"patient": stranger.id})
    error = assert_error(response, 400, "validation_error")
    assert "patient" in error["details"]
    assert str(stranger.id) not in error["message"]


def test_assign_unassign_and_put(doctor_api, place, patient):
    device = DeviceFactory(patient=None, place=place)
    response = doctor_api.patch(f"/api/devices/{device.id}/", {"patient": patient.id})
    assert response.status_code == 200 and response.json()["patient"] == patient.id
    response = doctor_api.patch(f"/api/devices/{device.id}/", {"patient": None})
    assert response.status_code == 200 and response.json()["patient"] is None

    response = doctor_api.put(
        f"/api/devices/{device.id}/",
        {"serial": "JAN-PUT", "model": "M2", "place": place.id, "patient": patient.id},
    )
    assert response.status_code == 200, response.content
    device.refresh_from_db()
    assert (device.serial, device.model, device.patient_id) == ("JAN-PUT", "M2", patient.id)
    # PUT replaces: an omitted patient is unassigned; is_active is kept when omitted.
    response = doctor_api.put(
        f"/api/devices/{device.id}/", {"serial": "JAN-PUT", "place": place.id}
    )
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.patient_id is None and device.model == "" and device.is_active
    # PUT needs the required fields.
    error = assert_error(doctor_api.put(f"/api/devices/{device.id}/", {"model": "x"}), 400)
    assert {"serial", "place"} <= set(error["details"])


def test_last_seen_at_and_id_are_read_only(admin_api, device):
    response = admin_api.patch(
        f"/api/devices/{device.id}/", {"last_seen_at": "2020-01-01T00:00:00Z", "id": 999}
    )
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.last_seen_at is None and device.id != 999


# --- Status and token rotation ----------------------------------------------------------------


def test_change_status_toggles_and_returns_the_device(doctor_api, device):
    response = doctor_api.post(f"/api/devices/{device.id}/change-status/")
    assert response.status_code == 200
    assert set(response.json()) == DEVICE_FIELDS
    assert response.json()["is_active"] is False
    device.refresh_from_db()
    assert device.is_active is False
    response = doctor_api.post(f"/api/devices/{device.id}/change-status/")
    assert response.json()["is_active"] is True


def test_rotate_token_invalidates_the_old_one(admin_api, device):
    old = device.token
    assert device_client(old).post("/api/records/", _reading(1)).status_code == 201
    response = admin_api.post(f"/api/devices/{device.id}/rotate-token/")
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old
    assert set(response.json()) == DEVICE_FIELDS | {"token"}
    device.refresh_from_db()
    assert device.token_hash == token_hash(new)

    assert_error(device_client(old).post("/api/records/", _reading(2)), 401, "invalid_token")
    assert device_client(new).post("/api/records/", _reading(2)).status_code == 201


# --- Permissions ------------------------------------------------------------------------------


def test_nurse_reads_but_cannot_write(nurse_api, device, place, patient):
    assert nurse_api.get("/api/devices/").json()["count"] == 1
    assert nurse_api.get(f"/api/devices/{device.id}/").status_code == 200
    writes = [
        ("post", "/api/devices/", {"serial": "N-1", "place": place.id}),
        ("put", f"/api/devices/{device.id}/", {"serial": "N-1", "place": place.id}),
        ("patch", f"/api/devices/{device.id}/", {"model": "hacked"}),
        ("post", f"/api/devices/{device.id}/change-status/", None),
        ("post", f"/api/devices/{device.id}/rotate-token/", None),
    ]
    for method, url, data in writes:
        assert_error(getattr(nurse_api, method)(url, data), 403, "forbidden")
    device.refresh_from_db()
    assert device.is_active and device.model != "hacked"
    assert not Device.objects.filter(serial="N-1").exists()


def test_other_places_devices_are_404(doctor_api, nurse_api, other_device, device):
    ids = [d["id"] for d in doctor_api.get("/api/devices/").json()["results"]]
    assert ids == [device.id]
    for url in (
        f"/api/devices/{other_device.id}/",
        f"/api/devices/{other_device.id}/change-status/",
        f"/api/devices/{other_device.id}/rotate-token/",
    ):
        method = doctor_api.get if url.count("/") == 4 else doctor_api.post
        assert_error(method(url), 404, "not_found")
    assert_error(doctor_api.patch(f"/api/devices/{other_device.id}/", {"model": "x"}), 404)
    assert_error(nurse_api.get(f"/api/devices/{other_device.id}/"), 404, "not_found")
    other_device.refresh_from_db()
    assert other_device.is_active and other_device.model != "x"


def test_admin_sees_every_place(admin_api, device, other_device):
    assert admin_api.get("/api/devices/").json()["count"] == 2


def test_anonymous_is_401(api, device):
    assert_error(api.get("/api/devices/"), 401, "not_authenticated")
    assert_error(api.get(f"/api/devices/{device.id}/"), 401)
    assert_error(api.post(f"/api/devices/{device.id}/change-status/"), 401)


def test_device_token_is_refused_on_device_endpoints(device, place):
    client = device_client(device.token)
    assert_error(client.get("/api/devices/"), 401)
    assert_error(client.get(f"/api/devices/{device.id}/"), 401)
    assert_error(client.post("/api/devices/", {"serial": "D-1", "place": place.id}), 401)
    assert_error(client.post(f"/api/devices/{device.id}/rotate-token/"), 401)
    assert_error(client.post(f"/api/devices/{device.id}/change-status/"), 401)
    assert_error(client.get(f"/api/records/{device.patient_id}/"), 401)
    device.refresh_from_db()
    assert device.is_active


def _api_routes():
    """Every DRF route under /api/ with its placeholders filled in, and its view class."""

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.callback

    for raw, callback in walk(get_resolver().url_patterns, ""):
        url = re.sub(r"\(\?P<\w+>[^)]*\)", "1", raw)
        url = re.sub(r"<[^>]+>", "1", url).replace("^", "").replace("$", "")
        if not url.startswith("api/") or "(" in url or "\\" in url:
            continue
        cls = getattr(callback, "cls", None)
        if cls is not None:
            yield "/" + url, cls


def _is_public(cls) -> bool:
    perms = list(getattr(cls, "permission_classes", []))
    return not perms or any(isinstance(p, type) and issubclass(p, AllowAny) for p in perms)


def test_device_token_opens_no_endpoint_but_posting_readings(device):
    """Whatever endpoints exist, a device token is refused (401/403) on all but records."""
    client = device_client(device.token)
    checked = 0
    for url, cls in _api_routes():
        if url == "/api/records/" or _is_public(cls) or url.startswith("/api/schema"):
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            response = getattr(client, method)(url, {})
            assert response.status_code in (401, 403), (method, url, response.status_code)
            assert_error(response, response.status_code)
            checked += 1
    assert checked >= 15  # at least the device and history endpoints were walked


# --- Filters ----------------------------------------------------------------------------------


def test_list_filters_search_and_ordering(admin_api, place, patient):
    assigned = DeviceFactory(serial="B-ASSIGNED", place=place, patient=patient, model="Keyar")
    spare = DeviceFactory(serial="A-SPARE", place=place, patient=None, model="Doppler")
    off = DeviceFactory(serial="C-OFF", place=place, patient=None, is_active=False)

    def serials(query: str) -> list[str]:
        response = admin_api.get(f"/api/devices/{query}")
        assert response.status_code == 200, response.content
        return [d["serial"] for d in response.json()["results"]]

    assert serials("") == ["A-SPARE", "B-ASSIGNED", "C-OFF"]
    assert serials("?is_active=false") == [off.serial]
    assert serials("?assigned=true") == [assigned.serial]
    assert serials("?assigned=false") == [spare.serial, off.serial]
    assert serials(f"?patient={patient.id}") == [assigned.serial]
    assert serials("?search=doppler") == [spare.serial]
    assert serials("?search=c-of") == [off.serial]
    assert serials("?ordering=-serial") == ["C-OFF", "B-ASSIGNED", "A-SPARE"]
    assert serials(f"?place={place.id}&is_active=true") == ["A-SPARE", "B-ASSIGNED"]
    assert_error(admin_api.get("/api/devices/?place=abc"), 400, "validation_error", field="place")


def test_a_lost_race_on_unique_columns_is_still_409(device, place):
    """The checks run before saving; a concurrent insert between check and save hits the
    database constraint, which must surface as the same 409, never a 500."""
    twin = Device(serial=device.serial, place=place, token_hash="x" * 64)
    with pytest.raises(Conflict) as info:
        services._save(twin)
    assert info.value.code == "conflict"

    spare = DeviceFactory(patient=None, place=place)
    spare.patient = device.patient
    with pytest.raises(Conflict) as info:
        services._save(spare, update_fields=["patient"])
    assert info.value.code == "patient_has_device"
