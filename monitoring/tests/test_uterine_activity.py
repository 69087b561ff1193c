"""The uterine activity metric on every ingest path, in history, aggregation and live frames;
``value`` as the reading's number, ``bpm`` kept for heart rates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from monitoring.models import Reading
from monitoring.readings import reading_parse
from testing.assertions import assert_error
from testing.clients import device_client
from testing.factories import DeviceFactory, PatientFactory, ingest_target
from testing.ws import dashboard_connect, device_connect, receive_type, subscribe

pytestmark = pytest.mark.django_db


def _ua(seq: int | None = 1, value: int = 40, **overrides) -> dict:
    raw = {
        "metric": "uterine_activity",
        "value": value,
        "recorded_at": (timezone.now() - timedelta(seconds=1)).isoformat(),
        **overrides,
    }
    if seq is not None:
        raw["seq"] = seq
    return raw


@pytest.fixture
def obstetric_device(obstetric_patient):
    return DeviceFactory(patient=obstetric_patient)


# --- Validation (one place: monitoring.readings.reading_parse) ----------------------------------


def test_rest_uterine_activity_is_stored_with_value_and_without_bpm(obstetric_device):
    response = device_client(obstetric_device.token).post("/api/records/", _ua(1, 37))
    assert response.status_code == 201, response.content
    [stored] = response.json()["stored"]
    assert stored["metric"] == "uterine_activity" and stored["value"] == 37
    assert "bpm" not in stored
    row = Reading.objects.get()
    assert (row.metric, row.value) == ("uterine_activity", 37)


def test_adult_patient_is_refused_uterine_activity(device):
    response = device_client(device.token).post("/api/records/", _ua(1))
    error = assert_error(response, 400, "validation_error")
    assert error["details"]["metric"] == [
        "uterine_activity is only recorded for obstetric patients."
    ]
    assert not Reading.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"value": 101}, "value"),
        ({"value": -1}, "value"),
        ({"value": 12.5}, "value"),
        ({"value": True}, "value"),
        ({"value": None}, "value"),
        ({"bpm": 40}, "bpm"),  # bpm is the name for heart rates only
    ],
)
def test_invalid_uterine_activity_values_are_refused(obstetric_device, overrides, field):
    response = device_client(obstetric_device.token).post("/api/records/", _ua(1, **overrides))
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {field}


def test_uterine_activity_bounds_are_inclusive(obstetric_device):
    client = device_client(obstetric_device.token)
    response = client.post("/api/records/", [_ua(1, 0), _ua(2, 100)])
    assert response.status_code == 201, response.content
    assert sorted(r["value"] for r in response.json()["stored"]) == [0, 100]


def test_missing_number_is_refused_with_the_metric_field_name(obstetric_device):
    client = device_client(obstetric_device.token)
    raw = _ua(1)
    del raw["value"]
    assert set(assert_error(client.post("/api/records/", raw), 400)["details"]) == {"value"}
    hr = {"metric": "heart_rate", "recorded_at": raw["recorded_at"], "seq": 2}
    assert set(assert_error(client.post("/api/records/", hr), 400)["details"]) == {"bpm"}


def test_heart_rate_accepts_value_or_bpm_and_answers_with_both(device):
    client = device_client(device.token)
    now = (timezone.now() - timedelta(seconds=1)).isoformat()
    items = [
        {"metric": "heart_rate", "value": 81, "recorded_at": now, "seq": 1},
        {"metric": "heart_rate", "bpm": 82, "recorded_at": now, "seq": 2},
        {"metric": "heart_rate", "bpm": 83, "value": 83, "recorded_at": now, "seq": 3},
    ]
    response = client.post("/api/records/", items)
    assert response.status_code == 201, response.content
    assert sorted((r["value"], r["bpm"]) for r in response.json()["stored"]) == [
        (81, 81),
        (82, 82),
        (83, 83),
    ]


def test_value_and_bpm_that_disagree_are_refused(device):
    raw = {
        "metric": "heart_rate",
        "value": 80,
        "bpm": 90,
        "recorded_at": timezone.now().isoformat(),
        "seq": 1,
    }
    error = assert_error(device_client(device.token).post("/api/records/", raw), 400)
    assert set(error["details"]) == {"bpm"}


def test_the_parser_every_path_shares_refuses_an_adult(device):
    from common.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        reading_parse(_ua(1), target=ingest_target(device), require_seq=True)
    assert set(caught.value.details or {}) == {"metric"}


def test_clinician_enters_uterine_activity_by_hand(nurse_api, obstetric_patient):
    response = nurse_api.post("/api/records/", _ua(None, 55, patient=obstetric_patient.id))
    assert response.status_code == 201, response.content
    assert response.json()["stored"][0]["value"] == 55


# --- History and aggregation ------------------------------------------------------------------


def test_history_and_aggregation_carry_uterine_activity(nurse_api, obstetric_patient):
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    Reading.objects.bulk_create(
        [
            Reading(
                patient=obstetric_patient,
                metric="uterine_activity",
                value=value,
                recorded_at=start + timedelta(seconds=i),
            )
            for i, value in enumerate((10, 20, 60))
        ]
        + [
            Reading(
                patient=obstetric_patient,
                metric="fetal_heart_rate",
                value=140,
                recorded_at=start,
            )
        ]
    )
    url = f"/api/records/{obstetric_patient.id}/"
    body = nurse_api.get(url, {"metric": "uterine_activity"}).json()
    assert [(r["value"], "bpm" in r) for r in body["results"]] == [
        (60, False),
        (20, False),
        (10, False),
    ]
    fetal = nurse_api.get(url, {"metric": "fetal_heart_rate"}).json()["results"]
    assert [(r["value"], r["bpm"]) for r in fetal] == [(140, 140)]
    window = {"from": start.isoformat(), "to": (start + timedelta(minutes=1)).isoformat()}
    buckets = nurse_api.get(url, {"bucket": 60, "metric": "uterine_activity", **window})
    assert [(b["metric"], b["min"], b["max"], b["count"]) for b in buckets.json()["results"]] == [
        ("uterine_activity", 10, 60, 3)
    ]


# --- WebSocket ingest and live frames ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_websocket_ingest_and_live_items_carry_value(nurse, ward):
    patient = await sync_to_async(PatientFactory)(ward=ward, monitoring_profile="obstetric")
    device = await sync_to_async(DeviceFactory)(patient=patient)
    watcher = await dashboard_connect(nurse)
    await subscribe(watcher, ward=ward.id)
    device_ws = await device_connect(device.token)
    now = timezone.now().isoformat()
    items = [
        {"seq": 1, "metric": "uterine_activity", "value": 42, "recorded_at": now},
        {"seq": 2, "metric": "fetal_heart_rate", "value": 141, "recorded_at": now},
        {"seq": 3, "metric": "uterine_activity", "value": 101, "recorded_at": now},
    ]
    await device_ws.send_json_to({"type": "readings", "items": items})
    error = await receive_type(device_ws, "error")
    assert error["seq"] == 3 and error["error"]["code"] == "validation_error"
    assert set(error["error"]["details"]) == {"value"}
    assert (await receive_type(device_ws, "ack"))["seqs"] == [1, 2]
    frame = await receive_type(watcher, "readings")
    by_seq = {i["seq"]: i for i in frame["items"]}
    assert by_seq[1]["value"] == 42 and "bpm" not in by_seq[1]
    assert (by_seq[2]["value"], by_seq[2]["bpm"]) == (141, 141)

    # The snapshot's latest readings carry value too.
    snapshot = await subscribe(watcher, patient=patient.id)
    [entry] = snapshot["patients"]
    assert entry["latest"]["uterine_activity"]["value"] == 42
    assert "bpm" not in entry["latest"]["uterine_activity"]
    assert entry["latest"]["fetal_heart_rate"]["bpm"] == 141
    for c in (watcher, device_ws):
        await c.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_websocket_refuses_uterine_activity_for_an_adult(device):
    device_ws = await device_connect(device.token)
    await device_ws.send_json_to(
        {"type": "reading", **_ua(7), "recorded_at": timezone.now().isoformat()}
    )
    error = await receive_type(device_ws, "error")
    assert error["seq"] == 7 and error["error"]["code"] == "validation_error"
    assert "metric" in error["error"]["details"]
    assert not await sync_to_async(Reading.objects.exists)()
    await device_ws.disconnect()
