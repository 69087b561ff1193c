"""End to end, with real processes: a Daphne server, a Celery worker running beat, real
Redis and a real SMTP server. A bradycardia episode streamed by a device over its WebSocket
raises one alert on a subscribed dashboard and one e-mail per clinician; the alert escalates
to the place's admin until a nurse acknowledges it from the dashboard.

Both backends (testing.live): on PostgreSQL the processes share this run's test database
(the test is transactional, so what they write is committed and flushed afterwards); on SQLite
they share a file database migrated for the session. Data is seeded and read through short
Django subprocesses, the same way for both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from testing.live import live_dashboard, live_device, until
from testing.processes import CeleryWorker, Daphne, Evaluator, ServerProcess, django_run
from testing.ws import episode, reading

ESCALATION_SECONDS = 3

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


@pytest.fixture
def live_env(request, live_env, smtp_server, clean_alarm_state) -> Iterator[dict[str, str]]:
    """The shared server environment, plus real SMTP, a real Celery worker and short clinical
    timings; a test overrides some of them with ``indirect`` parametrization."""
    overrides = getattr(request, "param", {})
    yield {
        **live_env,
        "EMAIL_URL": smtp_server.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "ALERT_ESCALATION_SECONDS": str(ESCALATION_SECONDS),
        "ALARM_SCAN_SECONDS": "1",
        "DEVICE_OFFLINE_SECONDS": "600",
        **overrides,
    }


SEED = """
import uuid
from accounts.models import Role
tag = uuid.uuid4().hex[:8]
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, UserFactory, WardFactory
from rest_framework_simplejwt.tokens import AccessToken
place = PlaceFactory()
ward = WardFactory(place=place)
doctor = UserFactory(role=Role.DOCTOR, places=[place], email=f"live-doctor-{tag}@example.org")
nurse = UserFactory(role=Role.NURSE, places=[place], email=f"live-nurse-{tag}@example.org")
admin = UserFactory(role=Role.ADMIN, places=[place], email=f"live-admin-{tag}@example.org")
other_admin = UserFactory(role=Role.ADMIN, email=f"live-other-admin-{tag}@example.org")
outsider = UserFactory(
    role=Role.NURSE, places=[PlaceFactory()], email=f"live-outsider-{tag}@example.org"
)
patient = PatientFactory(ward=ward, monitoring_profile="adult")
device = DeviceFactory(patient=patient)
result = {"ward": ward.id, "patient": patient.id, "device_token": device.token,
          "nurse_token": str(AccessToken.for_user(nurse)),
          "emails": {"doctor": doctor.email, "nurse": nurse.email, "admin": admin.email,
                     "other_admin": other_admin.email, "outsider": outsider.email}}
"""


@pytest.fixture
def servers(live_env, tmp_path) -> Iterator[dict[str, Any]]:
    daphne = Daphne(live_env, tmp_path / "daphne.log")
    started: list[ServerProcess] = [daphne]
    try:
        worker = CeleryWorker(live_env, tmp_path / "worker.log", name="alerts-live", beat=True)
        started.append(worker)
        evaluator = Evaluator(live_env, tmp_path / "evaluator.log")
        started.append(evaluator)
        daphne.wait_ready()
        worker.wait_ready()
        evaluator.wait_ready()
        yield {"worker": worker, "daphne": daphne}
    finally:
        for process in reversed(started):
            process.stop()


async def nurse_dashboard(servers: dict[str, Any], data: dict[str, Any]) -> ClientConnection:
    """The seeded nurse's dashboard, subscribed to the seeded ward."""
    url = servers["daphne"].url("/ws/dashboard/")
    return await live_dashboard(url, data["nurse_token"], data["ward"])


async def test_a_bradycardia_episode_alerts_emails_and_escalates_until_acknowledged(
    live_env, servers, smtp_server
):
    data = await asyncio.to_thread(django_run, live_env, SEED)
    dashboard = await nurse_dashboard(servers, data)

    alert_frames: list[dict] = []
    other_frames: list[dict] = []

    async def listen() -> None:
        async for raw in dashboard:
            frame = json.loads(raw)
            (alert_frames if frame["type"] == "alert" else other_frames).append(frame)

    listener = asyncio.create_task(listen())

    # 21 s of 35 bpm (NEWS2: <=40 is high, held 10 s), recorded over the last 20 s.
    device = await live_device(servers["daphne"].url("/ws/devices/"), data["device_token"])
    await device.send(json.dumps({"type": "readings", "items": episode(35, 20)}))
    acked: set[int] = set()
    async with asyncio.timeout(20):
        while len(acked) < 21:
            frame = json.loads(await device.recv())
            assert frame["type"] == "ack", frame
            acked.update(frame["seqs"])

    # One alert reaches the dashboard.
    await until(lambda: alert_frames, 20, "the alert frame")
    alert = alert_frames[0]["alert"]
    assert (alert["kind"], alert["priority"], alert["state"]) == ("bradycardia", "high", "active")
    assert alert["patient"] == data["patient"]

    # One e-mail per clinician of the place; nobody else.
    emails = data["emails"]
    doctor, nurse, admin = emails["doctor"], emails["nurse"], emails["admin"]
    await until(
        lambda: smtp_server.to(doctor) and smtp_server.to(nurse), 30, "the clinicians' e-mails"
    )

    # Unacknowledged: escalated to the place's admin, and again one interval later.
    await until(lambda: len(smtp_server.to(admin)) >= 2, 30, "two escalations")
    assert "UNACKNOWLEDGED" in smtp_server.to(admin)[0]["Subject"]

    # The nurse acknowledges from the dashboard: escalation stops.
    await dashboard.send(json.dumps({"type": "alert.ack", "alert": alert["id"]}))
    await until(lambda: any(f["type"] == "alert.ack.ok" for f in other_frames), 10, "ack ok")
    await until(lambda: len(alert_frames) >= 2, 10, "the acknowledged alert frame")
    assert alert_frames[1]["alert"]["state"] == "acknowledged"
    await asyncio.sleep(1.5)  # let an escalation already in flight finish
    escalations = len(smtp_server.to(admin))
    await asyncio.sleep(ESCALATION_SECONDS * 3)
    assert len(smtp_server.to(admin)) == escalations

    listener.cancel()
    await device.close()
    await dashboard.close()

    # Exactly one alert, one e-mail per clinician, none to people outside the place.
    assert {frame["alert"]["id"] for frame in alert_frames} == {alert["id"]}
    assert [frame["alert"]["state"] for frame in alert_frames] == ["active", "acknowledged"]
    assert len(smtp_server.to(doctor)) == 1 and len(smtp_server.to(nurse)) == 1
    assert smtp_server.to(emails["other_admin"]) == []
    assert smtp_server.to(emails["outsider"]) == []
    stored = await asyncio.to_thread(
        django_run,
        live_env,
        "from alerts.models import Alert\n"
        f"alerts = list(Alert.objects.filter(patient_id={data['patient']}))\n"
        "result = [(a.kind, a.state, [e.action for e in a.events.all()]) for a in alerts]",
    )
    assert len(stored) == 1
    kind, state, actions = stored[0]
    assert (kind, state) == ("bradycardia", "acknowledged")
    assert actions[0] == "raised" and actions[-1] == "acknowledged"
    assert actions.count("escalated") == escalations


@pytest.mark.parametrize("live_env", [{"DEVICE_OFFLINE_SECONDS": "2"}], indirect=True)
async def test_a_silent_device_raises_offline_and_its_next_reading_resolves_it(
    live_env, servers, smtp_server
):
    data = await asyncio.to_thread(django_run, live_env, SEED)
    dashboard = await nurse_dashboard(servers, data)

    async def next_alert() -> dict:
        async with asyncio.timeout(20):
            while True:
                frame = json.loads(await dashboard.recv())
                if frame["type"] == "alert":
                    return frame["alert"]

    device = await live_device(servers["daphne"].url("/ws/devices/"), data["device_token"])

    async def send(seq: int) -> None:
        await device.send(json.dumps({"type": "reading", **reading(seq, 78)}))
        async with asyncio.timeout(10):
            while json.loads(await device.recv())["type"] != "ack":
                pass

    await send(1)
    # The connection stays open, but no reading arrives: offline after 2 s (scan every 1 s).
    offline = await next_alert()
    assert (offline["kind"], offline["priority"], offline["state"]) == (
        "device_offline",
        "low",
        "active",
    )
    await send(2)
    back = await next_alert()
    assert (back["id"], back["state"]) == (offline["id"], "resolved")
    nurse = data["emails"]["nurse"]
    await until(lambda: smtp_server.to(nurse), 20, "the offline e-mail")
    assert "device offline" in smtp_server.to(nurse)[0]["Subject"]
    await device.close()
    await dashboard.close()
