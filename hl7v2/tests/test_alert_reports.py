"""PCD-04: alert events reported as ORU^R40 to a place's alert manager (a real MLLP server),
through Celery, each event once, retried until the alert manager takes it."""

from __future__ import annotations

import hl7
import pytest
from django.utils import timezone
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from alerts.models import Alert
from alerts.services import alert_acknowledge, alert_raise
from hl7v2.delivery import alert_event_report
from notifications.models import AlertNotification
from testing.clients import device_client
from testing.ws import episode

pytestmark = pytest.mark.django_db


@pytest.fixture
def reporting_place(place, alert_manager):
    place.alert_manager_host = alert_manager.host
    place.alert_manager_port = alert_manager.port
    place.save(update_fields=["alert_manager_host", "alert_manager_port"])
    return place


def _raise(patient, device=None) -> Alert:
    return alert_raise(
        patient_id=patient.id,
        kind="bradycardia",
        priority="high",
        message="Heart rate 35 bpm, at or below 40 for 10 s.",
        device_id=device.id if device else None,
    )


def _event(alert: Alert, action: str = "raised"):
    return alert.events.get(action=action)


def _due_now() -> None:
    """The back-off of every failed delivery has passed."""
    AlertNotification.objects.update(next_attempt_at=timezone.now())


def test_an_alert_event_is_an_oru_r40_of_the_hl7_2_6_structure(
    reporting_place, patient, device, alert_manager
):
    from django.utils import timezone

    from monitoring.models import Reading

    Reading.objects.create(
        patient=patient, device=device, metric="heart_rate", value=35, recorded_at=timezone.now(),
        seq=1,
    )  # fmt: skip
    alert = _raise(patient, device)
    assert alert_event_report(event_id=_event(alert).id) is True

    (received,) = alert_manager.received
    # hl7apy, strictly: the 2.6 ORU_R01 structure PCD-04 uses, with its groups.
    parsed = parse_message(received, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert parsed.validate()
    message = hl7.parse(received)
    msh = message.segment("MSH")
    assert str(msh(9)) == "ORU^R40^ORU_R01" and str(msh(12)) == "2.6"
    assert str(msh(10)) == f"ALERT{alert.id}-{_event(alert).id}"
    assert str(msh(21)).startswith("IHE_PCD_ACM_001")
    assert str(message.segment("PID")(3)(1)(1)) == patient.mrn
    assert str(message.segment("OBR")(3)(1)(1)) == str(alert.id)
    assert str(message.segment("NTE")(3)) == "Heart rate 35 bpm, at or below 40 for 10 s."
    obx = {str(s(3)(1)(1)): s for s in message.segments("OBX")}
    alarm = obx["196616"]
    assert str(alarm(5)) == "196670^MDC_EVT_LO_LT_LIM^MDC"  # "low" as other senders code it
    assert [str(r) for r in alarm(8)] == ["L", "PH", "SP"]
    assert str(obx["68481"](5)) == "start"
    assert str(obx["68482"](5)) == "active"
    assert str(obx["68483"](5)) == "enabled"
    # The facets in the ACM supplement's order: type, source, phase, state, inactivation.
    assert [(str(s(3)(1)(1)), str(s(4))) for s in message.segments("OBX")] == [
        ("196616", "1.0.0.0.1"),
        ("147842", "1.0.0.0.2"),
        ("68481", "1.0.0.0.3"),
        ("68482", "1.0.0.0.4"),
        ("68483", "1.0.0.0.5"),
    ]
    # The source measurement carries the value the alarm was raised on, its unit and the
    # limits (the adult NEWS2 bands: normal 51-90).
    source = obx["147842"]
    assert (str(source(2)), str(source(5)), str(source(6)(1)(1)), str(source(7))) == (
        "NM",
        "35",
        "264864",
        "51-90",
    )

    record = AlertNotification.objects.get(event=_event(alert), channel="hl7")
    assert record.recipient == f"{alert_manager.host}:{alert_manager.port}"
    assert record.sent_at is not None and record.attempts == 1


def test_each_event_is_reported_once(reporting_place, patient, alert_manager, nurse):
    alert = _raise(patient)
    raised = _event(alert)
    assert alert_event_report(event_id=raised.id) is True
    assert alert_event_report(event_id=raised.id) is False  # a duplicated task sends nothing
    assert len(alert_manager.received) == 1

    alert_acknowledge(alert_id=alert.id, user=nurse)
    assert alert_event_report(event_id=_event(alert, "acknowledged").id) is True
    acknowledged = hl7.parse(alert_manager.received[1])
    states = {str(s(3)(1)(1)): str(s(5)) for s in acknowledged.segments("OBX")}
    assert (states["68481"], states["68483"]) == ("update", "alert-acknowledged")


def test_a_refusal_is_recorded_and_retried_until_taken(reporting_place, patient, alert_manager):
    alert_manager.answers = ["AE", "AR"]
    event = _event(_raise(patient))
    for _ in range(2):
        assert alert_event_report(event_id=event.id) is False
        assert alert_event_report(event_id=event.id) is False  # not due before its back-off
        _due_now()
    record = AlertNotification.objects.get(event=event, channel="hl7")
    assert (record.attempts, record.sent_at, record.state) == (2, None, "pending")
    assert "answered AR" in record.last_error

    assert alert_event_report(event_id=event.id) is True
    record.refresh_from_db()
    assert record.attempts == 3 and record.sent_at is not None and record.last_error == ""
    # Each attempt carried the same message control id: the alert manager can drop repeats.
    control_ids = {str(hl7.parse(m).segment("MSH")(10)) for m in alert_manager.received}
    assert len(alert_manager.received) == 3 and len(control_ids) == 1


def test_an_unreachable_alert_manager_is_an_error_to_retry(place, patient):
    from config.net import free_port

    place.alert_manager_host, place.alert_manager_port = "127.0.0.1", free_port()
    place.save(update_fields=["alert_manager_host", "alert_manager_port"])
    event = _event(_raise(patient))
    assert alert_event_report(event_id=event.id) is False
    record = AlertNotification.objects.get(event=event, channel="hl7")
    assert record.last_error and record.state == "pending"  # tried again after its back-off


def test_a_place_without_an_alert_manager_gets_no_report(patient):
    event = _event(_raise(patient))
    assert alert_event_report(event_id=event.id) is False
    assert not AlertNotification.objects.filter(channel="hl7").exists()


def test_a_streamed_episode_reaches_the_alert_manager_through_celery(
    reporting_place,
    device,
    alert_manager,
    celery_eager,
    django_capture_on_commit_callbacks,
    alarms_drain,
    clean_alarm_state,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = device_client(device.token).post("/api/records/", episode(35, 15), format="json")
        assert alarms_drain() == 16
    assert response.status_code in (200, 201), response.content[:300]
    alert = Alert.objects.get(patient=device.patient)
    (received,) = alert_manager.received
    assert str(hl7.parse(received).segment("OBR")(3)(1)(1)) == str(alert.id)
    assert AlertNotification.objects.get(channel="hl7").sent_at is not None


def test_names_with_hl7_separators_are_escaped(reporting_place, patient, alert_manager):
    patient.name, patient.bed = "Smith^Jones|Ann & Co~", "B|7"
    patient.save(update_fields=["name", "bed"])
    patient.ward.name = "ICU^North"
    patient.ward.save(update_fields=["name"])
    alert_event_report(event_id=_event(_raise(patient)).id)
    message = hl7.parse(alert_manager.received[0])
    assert message.unescape(str(message.segment("PID")(5))) == "Smith^Jones|Ann & Co~"
    location = message.segment("PV1")(3)(1)
    assert [message.unescape(str(location(i))) for i in (1, 3)] == ["ICU^North", "B|7"]
