"""Maternal capture through the alarm evaluator: the technical alarm
``fhr_maternal_coincidence`` is raised for a stretch the fetal channel records the mother,
across dropouts and brief deviations; a stretch the maternal channel confirms at a rate that
passes for a fetal baseline is left out of the analysis (not read as a baseline or a
deceleration), the same in the API; one at a bradycardic rate is still read."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from alerts.models import CtgClassification
from alerts.tests.test_ctg_alarms import T0, Monitor, normal_fhr

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_alarm_state")]

CAPTURE = (1200, 1680)  # minutes 20 to 28


def mother(t: float) -> float:
    return 84 + 3 * math.sin(2 * math.pi * t / 45)


def mother_with_dropouts(t: float) -> float | None:
    """Her channel (the toco transducer's pulse sensor) loses 25 s of every 90."""
    return None if t % 90 < 25 else mother(t)


def pushing(t: float) -> float:
    """A mother whose rate has risen to the fetal range (pushing, fever, bleeding)."""
    return mother(t) + 36


def captured(t: float, rate=mother) -> float | None:
    """The fetal channel: the fetus, then the mother from minute 20 to 28 (with a dropout
    of 6 s every 40 and a brief deviation now and then), then the fetus again."""
    if not CAPTURE[0] <= t < CAPTURE[1]:
        return normal_fhr(t)
    if t % 40 < 6:
        return None
    if t % 150 < 3:
        return rate(t) + 20  # the Doppler half-locked on something else
    return rate(t) + 1


def captured_pushing(t: float) -> float | None:
    return captured(t, pushing)


def pushing_with_dropouts(t: float) -> float | None:
    return None if t % 90 < 25 else pushing(t)


@pytest.fixture
def monitor(alarms_drain):
    return Monitor(alarms_drain)


def test_a_stretch_recorded_from_the_mother_raises_the_technical_alarm(monitor, settings):
    monitor.feed(0, CAPTURE[0] + 50, fhr=captured, hr=mother_with_dropouts)
    assert monitor.alerts("fhr_maternal_coincidence") == []  # not yet for more than 60 s
    monitor.feed(CAPTURE[0] + 50, CAPTURE[0] + 120, fhr=captured, hr=mother_with_dropouts)
    [alert] = monitor.alerts("fhr_maternal_coincidence")
    assert alert.priority == "medium" and alert.state == "active"
    assert "probably recording the mother" in alert.message
    # Neither the dropouts of either channel nor the deviations end the episode.
    monitor.feed(CAPTURE[0] + 120, CAPTURE[1], fhr=captured, hr=mother_with_dropouts)
    [alert] = monitor.alerts("fhr_maternal_coincidence")
    assert alert.state == "active"
    # The fetus found again: the alarm resolves once clear for the clear time.
    clear = settings.ALARM_CTG_CLEAR_SECONDS
    monitor.feed(CAPTURE[1], CAPTURE[1] + clear + 60, fhr=captured, hr=mother_with_dropouts)
    assert monitor.alerts("fhr_maternal_coincidence")[0].state == "resolved"


def test_the_maternal_pulse_serves_where_there_is_no_maternal_ecg(monitor):
    """A labour ward's maternal heart rate often comes from a pulse oximeter or the toco
    transducer's pulse sensor (``pulse_rate``), not an ECG."""
    monitor.feed(0, CAPTURE[0] + 120, fhr=captured, pulse=mother_with_dropouts)
    [alert] = monitor.alerts("fhr_maternal_coincidence")
    assert "probably recording the mother" in alert.message


def test_without_the_maternal_channel_a_jump_to_a_maternal_rate_raises_it_too(monitor):
    monitor.feed(0, CAPTURE[0] + 120, fhr=captured)
    [alert] = monitor.alerts("fhr_maternal_coincidence")
    assert "may be recording the mother" in alert.message
    assert "no maternal heart rate to compare" in alert.message


def test_the_confirmed_stretch_is_not_read_as_baseline_or_deceleration(
    alarms_drain, obstetric_patient, nurse_api
):
    monitor = Monitor(alarms_drain, patient=obstetric_patient)
    monitor.feed(0, CAPTURE[1], fhr=captured_pushing, hr=pushing_with_dropouts)
    # 8 minutes at 120 bpm would be a prolonged deceleration and, in its 10-minute period, a
    # baseline of 120; recorded from the mother, they are neither.
    assert monitor.alerts("prolonged_deceleration") == []
    [alert] = monitor.alerts("fhr_maternal_coincidence")
    assert "recording the mother, not the fetus (left out of the CTG analysis)" in alert.message
    row = CtgClassification.objects.get(patient=monitor.patient)
    assert (row.classification, row.baseline_bpm) == ("normal", 140), row.reasons
    # The API reads the same window the same way, and says what it left out.
    to = (T0 + timedelta(seconds=CAPTURE[1])).isoformat()
    response = nurse_api.get(f"/api/patients/{monitor.patient.id}/ctg/", {"to": to})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["baseline_bpm"] == 140
    assert body["decelerations"] == []
    [stretch] = body["maternal_capture"]
    assert stretch["confirmed"] is True and stretch["excluded"] is True
    start = datetime.fromisoformat(stretch["start"]) - T0
    assert abs(start.total_seconds() - CAPTURE[0]) <= 10
    assert stretch["end"] == body["to"]
    assert 27 < body["excluded_percent"] < 30  # 8 of the 28 minutes monitored


def test_a_confirmed_stretch_at_a_bradycardic_rate_is_still_read(monitor):
    """The fetal channel at the mother's 85 bpm: the mother, or a fetus decelerating to her
    rate. The deceleration is not hidden; the technical alarm asks to confirm which."""
    monitor.feed(0, CAPTURE[1], fhr=captured, hr=mother_with_dropouts)
    assert monitor.alerts("prolonged_deceleration")
    [alert] = monitor.alerts("fhr_maternal_coincidence")
    assert "confirm the fetal heart rate" in alert.message


def test_without_the_maternal_channel_the_stretch_is_still_analysed(monitor):
    """The fetal channel's shape alone raises the technical alarm but hides nothing: a true
    deceleration that looks like a jump must still raise its own alarm."""
    monitor.feed(0, CAPTURE[1], fhr=captured)
    assert monitor.alerts("fhr_maternal_coincidence")
    assert monitor.alerts("prolonged_deceleration")
