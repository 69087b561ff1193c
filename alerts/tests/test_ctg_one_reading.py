"""One reading of the trace: for the same patient and the same end time, GET
/api/patients/<id>/ctg/ answers exactly what the alarm evaluator computed (the tile's
classification and the alarms' input), through monitoring sessions, signal loss and
decelerations. Readings are stored with explicit times and evaluated by an explicit drain."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from alerts import ctg_alarms
from alerts.models import CtgClassification
from alerts.tests.test_ctg_alarms import T0, Monitor, contractions
from ctg.window import CtgReading
from monitoring.serializers.ctg import ctg_payload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_alarm_state")]


def fhr_with_decelerations(t: float) -> float | None:
    """Baseline 140, variability, a 40-bpm deceleration with most contractions (every 3 min)
    and, from minute 40 on, a dropout of 20 s every 2 minutes."""
    if t >= 2400 and t % 120 < 20:
        return None
    value = 140 + 5 * math.sin(2 * math.pi * t / 23) + 2 * math.sin(2 * math.pi * t / 7)
    phase = t % 180
    if 20 <= phase < 80 and (t // 180) % 4 != 3:
        value -= 40 * math.sin(math.pi * (phase - 20) / 60)
    return value


@pytest.fixture
def evaluated(monkeypatch):
    """The readings the evaluator computed, by end time (it still computes them itself)."""
    readings: dict[float, CtgReading] = {}
    original = ctg_alarms.ctg_read

    def spy(**kwargs):
        reading = original(**kwargs)
        readings[reading.end] = reading
        return reading

    monkeypatch.setattr(ctg_alarms, "ctg_read", spy)
    return readings


def test_the_api_answers_what_the_evaluator_computed_for_the_same_end(
    alarms_drain, obstetric_patient, nurse_api, evaluated, settings
):
    settings.CTG_REASONS_REFRESH_SECONDS = 0  # the tile's row follows every evaluation
    monitor = Monitor(alarms_drain, patient=obstetric_patient)
    compared: list[str] = []

    def compare_last() -> None:
        end = max(evaluated)
        reading = evaluated[end]
        to = (T0 + timedelta(seconds=end - T0.timestamp())).isoformat()
        response = nurse_api.get(f"/api/patients/{monitor.patient.id}/ctg/", {"to": to})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body == ctg_payload(patient_id=monitor.patient.id, reading=reading)
        row = CtgClassification.objects.get(patient=monitor.patient)
        assert (row.classification, row.baseline_bpm, row.reasons) == (
            body["classification"],
            body["baseline_bpm"],
            body["reasons"],
        )
        compared.append(body["classification"])

    ua = contractions(180)
    # A first session of 4 minutes, a 15-minute break (a new session), then 50 minutes.
    for start, stop in [(0, 240), (1140, 3000)]:
        t = start
        while t < stop:
            monitor.feed(t, t + 60, fhr=fhr_with_decelerations, ua=ua)
            t += 60
            compare_last()
    assert len(compared) == 35
    # Too short (4 minutes), too short again after the break, classified after 10 minutes of
    # the new session (with decelerations at most contractions: suspicious).
    assert compared[:13] == ["insufficient_signal"] * 13
    assert set(compared[13:]) == {"suspicious"}
