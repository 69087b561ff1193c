"""The real processes: ``manage.py hl7_listen`` and ``manage.py hl7_send`` against it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hl7v2.pcd01 import ObservationOut, oru_r01_build
from testing.processes import PYTHON, ROOT, Hl7Listener, django_run

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

SEED = """
from testing.factories import DeviceFactory, PatientFactory
patient = PatientFactory(mrn="MRN-LIVE-1")
device = DeviceFactory(patient=patient, serial="HL7-LIVE-1")
result = device.id
"""

STORED = """
from monitoring.models import Reading
result = list(Reading.objects.filter(device__serial="HL7-LIVE-1").order_by("recorded_at")
              .values_list("value", flat=True))
"""


def test_hl7_send_prints_the_acks_of_a_real_listener(live_env, tmp_path: Path):
    django_run(live_env, SEED)
    listener = Hl7Listener(live_env, tmp_path / "hl7.log").wait_ready()
    try:
        from django.utils import timezone

        now = timezone.now()
        good = oru_r01_build(
            control_id="LIVE-1",
            observations=[ObservationOut("64", at=now, device="HL7-LIVE-1")],
            mrn="MRN-LIVE-1",
        )
        unknown = good.replace("LIVE-1", "LIVE-2").replace("HL7-LIVE-2", "NOBODY")
        messages = tmp_path / "messages.hl7"
        # As a user writes a file: one segment a line.
        messages.write_text((good + unknown).replace("\r", "\n"))
        done = subprocess.run(
            [PYTHON, "manage.py", "hl7_send", str(messages), "--port", str(listener.port)],
            cwd=ROOT,
            env=live_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        acks = done.stdout.splitlines()
        assert len(acks) == 2, done.stdout + done.stderr
        assert "MSA|AA|LIVE-1" in acks[0]
        assert "MSA|AE|LIVE-2" in acks[1] and "unknown_device" in acks[1]
        assert done.returncode == 1 and "1 of 2 message(s) not accepted" in done.stderr
        assert django_run(live_env, STORED) == [64]

        # From standard input, the same message again: accepted, stored once.
        again = subprocess.run(
            [PYTHON, "manage.py", "hl7_send", "-", "--port", str(listener.port)],
            cwd=ROOT,
            env=live_env,
            input=good,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 0 and "MSA|AA|LIVE-1" in again.stdout, again.stderr
        assert django_run(live_env, STORED) == [64]
    finally:
        listener.stop()
    assert listener.process.returncode == 0  # SIGTERM: a clean stop
