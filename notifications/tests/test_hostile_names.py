"""Hostile names in every outgoing format: a ward called "A&E", ward and bed names longer
than HL7's 20 characters, an MRN with "&", and a patient name holding a carriage return and
a line feed (stored before names were validated, or by a feed that did not check). Every
message is built, escaped and delivered once, at its first attempt, through real servers:
SMTP (aiosmtpd), an HTTP webhook receiver and an MLLP alert manager."""

from __future__ import annotations

import json
import re

import hl7
import pytest

from alerts import services
from clinical.models import Patient, Ward
from notifications.models import AlertNotification
from testing.hl7 import alert_manager as alert_manager

pytestmark = pytest.mark.django_db

NAME = "Ann\r\nBcc: intruder@example.org\rMSH|^~\\&|FORGED"
WARD = "A&E Emergency Department North"  # 30 characters
BED = "Resuscitation bay 12 & overflow"  # 31 characters
MRN = "12&34^5|6~7\\8"


@pytest.fixture
def hostile_patient(place, ward, alert_manager, webhook_server):
    place.webhook_url, place.webhook_secret = webhook_server.url, "k"
    place.alert_manager_host, place.alert_manager_port = alert_manager.host, alert_manager.port
    place.save()
    Ward.objects.filter(pk=ward.pk).update(name=WARD)  # past the validators, as old data is
    patient = Patient.objects.create(
        name="placeholder", mrn="placeholder", sex="F", place=place, ward=ward, bed="1"
    )
    Patient.objects.filter(pk=patient.pk).update(name=NAME, mrn=MRN, bed=BED)
    return Patient.objects.get(pk=patient.pk)


def test_every_format_carries_a_hostile_name_escaped_and_delivered_once(
    hostile_patient,
    nurse,
    smtp_server,
    webhook_server,
    alert_manager,
    celery_eager,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        alert = services.alert_raise(
            patient_id=hostile_patient.id,
            kind="bradycardia",
            priority="high",
            message="Bradycardia: heart rate 35 bpm for 10 s.",
        )
    rows = AlertNotification.objects.filter(event__alert=alert)
    assert {(r.channel, r.state, r.attempts) for r in rows} == {
        ("email", "sent", 1),
        ("webhook", "sent", 1),
        ("hl7", "sent", 1),
    }

    # E-mail: one line of subject, no injected header, only the intended recipient.
    (message,) = smtp_server.messages
    assert message["X-Envelope-To"] == nurse.email
    assert message["Bcc"] is None and "intruder" not in message["X-Envelope-To"]
    # A long subject is folded (a line break followed by a space); nothing else breaks it.
    subject = re.sub(r"\r?\n(?=[ \t])", "", message["Subject"])
    assert "\r" not in subject and "\n" not in subject
    assert "Ann  Bcc: intruder@example.org MSH|^~\\&|FORGED" in subject
    assert WARD in subject
    body = message.get_payload()
    assert "MRN 12&34^5|6~7\\8." in body
    assert not any(line.startswith(("Bcc:", "MSH")) for line in body.splitlines())

    # Webhook: JSON carries the name exactly as stored (its escaping is JSON's).
    (_, raw) = webhook_server.requests[0]
    payload = json.loads(raw)
    assert payload["alert"]["patient_name"] == NAME
    assert b"\r" not in raw and b"\n" not in raw  # escaped inside the JSON strings

    # HL7 PCD-04: escaped separators, no injected segment, lengths cut to the types' limits.
    (received,) = alert_manager.received
    segments = [segment[:3] for segment in received.strip("\r").split("\r")]
    assert segments.count("MSH") == 1 and segments[:3] == ["MSH", "PID", "PV1"]
    report = hl7.parse(received)
    pid = report.segment("PID")
    assert report.unescape(str(pid(3)(1)(1))) == MRN
    assert report.unescape(str(pid(5))) == "Ann  Bcc: intruder@example.org MSH|^~\\&|FORGED"
    location = report.segment("PV1")(3)(1)
    assert report.unescape(str(location(1))) == WARD[:20]
    assert report.unescape(str(location(3))) == BED[:20]
