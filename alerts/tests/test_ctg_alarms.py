"""CTG alarms with controlled time: readings are stored with explicit ``recorded_at`` through
the ingest service (database and readings stream) and evaluated with ``alarms_drain``, chunk
by chunk, as the evaluator process would."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from alerts.ctg_alarms import ctg_alarms_evaluate
from alerts.ctg_rules import CtgLimits, Episode, episode_step
from alerts.models import Alert, AlertEvent
from alerts.services import ctg_alarm_limits_set
from monitoring.readings import StoredReading
from monitoring.services import readings_ingest
from testing.assertions import assert_error
from testing.factories import DeviceFactory, PatientFactory, ReadingInFactory, StoredReadingFactory

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_alarm_state")]

Trace = Callable[[float], float | None]


def normal_fhr(t: float) -> float:
    """A reassuring trace: baseline 140, bandwidth 8 bpm, an acceleration (25 bpm for 40 s)
    every 10 minutes."""
    phase = (t - 300) % 600
    rise = 25 * min(1.0, phase / 8, (40 - phase) / 8) if 0 <= phase < 40 else 0.0
    return 140 + 4 * math.sin(2 * math.pi * t / 20) + rise


def flat_ua(t: float) -> float:
    return 10


def contractions(every: float) -> Trace:
    def ua(t: float) -> float:
        phase = t % every
        return 10 + (60 * math.sin(math.pi * phase / 60) ** 2 if phase < 60 else 0)

    return ua


class Monitor:
    """An obstetric patient's monitor: feeds readings at 1 Hz and drains the evaluator."""

    def __init__(self, drain, patient=None) -> None:
        self.patient = patient or PatientFactory(monitoring_profile="obstetric")
        self.device = DeviceFactory(patient=self.patient, place=self.patient.place)
        self.drain = drain
        self.seq = 0

    def feed(
        self,
        start: float,
        end: float,
        *,
        fhr: Trace = normal_fhr,
        ua: Trace | None = flat_ua,
        hr: Trace | None = None,
        pulse: Trace | None = None,
        chunk: float = 30,
    ) -> None:
        """Readings for the seconds [start, end), evaluated every ``chunk`` seconds."""
        t = start
        while t < end:
            stop = min(t + chunk, end)
            readings = []
            for second in range(int(t), int(stop)):
                for metric, trace in (
                    ("fetal_heart_rate", fhr),
                    ("uterine_activity", ua),
                    ("heart_rate", hr),
                    ("pulse_rate", pulse),
                ):
                    value = trace(second) if trace is not None else None
                    if value is None:
                        continue
                    self.seq += 1
                    readings.append(
                        ReadingInFactory(
                            device=self.device,
                            metric=metric,
                            value=round(value),
                            recorded_at=T0 + timedelta(seconds=second),
                            seq=self.seq,
                        )
                    )
            readings_ingest(readings=readings, wards={self.patient.id: self.patient.ward_id})
            self.drain()
            t = stop

    def alerts(self, kind: str) -> list[Alert]:
        return list(Alert.objects.filter(patient=self.patient, kind=kind).order_by("id"))

    def open(self, kind: str) -> Alert | None:
        return (
            Alert.objects.filter(patient=self.patient, kind=kind).exclude(state="resolved").first()
        )


@pytest.fixture
def monitor(alarms_drain):
    return Monitor(alarms_drain)


# --- The episode state machine (pure) ---------------------------------------------------------


def test_episode_raises_after_its_hold_once_and_resolves_after_clear():
    episode = Episode()
    episode, action = episode_step(episode, active=True, at=100, hold=30, clear=10)
    assert action is None and episode.since == 100
    episode, action = episode_step(episode, active=True, at=129, hold=30, clear=10)
    assert action is None
    episode, action = episode_step(episode, active=True, at=130, hold=30, clear=10)
    assert action == "raise"
    episode, action = episode_step(episode, active=True, at=500, hold=30, clear=10)
    assert action is None  # one alert per episode
    episode, action = episode_step(episode, active=False, at=505, hold=30, clear=10)
    assert action is None and episode.raised
    episode, action = episode_step(episode, active=True, at=507, hold=30, clear=10)
    assert action is None and episode.clear_since is None  # back before the clear time
    episode, action = episode_step(episode, active=False, at=510, hold=30, clear=10)
    episode, action = episode_step(episode, active=False, at=520, hold=30, clear=10)
    assert action == "resolve" and episode.is_idle


def test_a_transient_condition_raises_nothing():
    episode, _ = episode_step(Episode(), active=True, at=0, hold=30, clear=10)
    episode, action = episode_step(episode, active=False, at=20, hold=30, clear=10)
    assert action is None and episode.is_idle


# --- Each alarm on the real path --------------------------------------------------------------


def test_prolonged_deceleration_raises_high_once_and_resolves(monitor):
    monitor.feed(0, 1200)
    monitor.feed(1200, 1380, fhr=lambda t: 80)  # 3 minutes down: not yet more than 3
    assert monitor.alerts("prolonged_deceleration") == []
    monitor.feed(1380, 1440, fhr=lambda t: 80)
    [alert] = monitor.alerts("prolonged_deceleration")
    assert alert.priority == "high" and alert.state == "active"
    assert alert.message.startswith("Prolonged deceleration: fetal heart rate down to 80 bpm")
    monitor.feed(1440, 1500, fhr=lambda t: 80)
    assert len(monitor.alerts("prolonged_deceleration")) == 1
    monitor.feed(1500, 1620)  # recovered, and clear for more than 30 s
    [alert] = monitor.alerts("prolonged_deceleration")
    assert alert.state == "resolved"
    assert AlertEvent.objects.filter(alert=alert, action="raised").count() == 1


def test_pathological_ctg_raises_high_with_the_reasons(monitor):
    monitor.feed(0, 1500, fhr=lambda t: 95 + 4 * math.sin(2 * math.pi * t / 20), chunk=60)
    [alert] = monitor.alerts("ctg_pathological")
    assert alert.priority == "high" and alert.state == "active"
    assert "CTG pathological (FIGO 2015)" in alert.message
    assert "Baseline 95 bpm (below 100)." in alert.message


def test_normal_ctg_with_normal_contractions_raises_no_ctg_alarm(monitor):
    monitor.feed(0, 2400, ua=contractions(180), chunk=120)
    assert not Alert.objects.filter(patient=monitor.patient).exists()


def test_tachysystole_raises_medium_once(monitor):
    monitor.feed(0, 2400, ua=contractions(90), chunk=120)
    [alert] = monitor.alerts("tachysystole")
    assert alert.priority == "medium" and alert.state == "active"
    assert alert.message.startswith("Tachysystole: ")
    assert AlertEvent.objects.filter(alert=alert, action="raised").count() == 1


def test_fhr_signal_loss_is_raised_after_its_hold_and_resolves(monitor):
    monitor.feed(0, 600)
    monitor.feed(600, 690, fhr=lambda t: None)  # 90 s lost of the last 5 min: 30 %
    assert monitor.alerts("fhr_signal_loss") == []  # not yet held 30 s
    monitor.feed(690, 750, fhr=lambda t: None)
    [alert] = monitor.alerts("fhr_signal_loss")
    assert alert.priority == "medium"
    assert alert.message.startswith("Fetal heart rate signal lost for ")
    monitor.feed(750, 900, fhr=lambda t: None)
    assert len(monitor.alerts("fhr_signal_loss")) == 1
    monitor.feed(900, 1260)  # the lost 5 minutes leave the last-5-minutes window
    assert monitor.alerts("fhr_signal_loss")[0].state == "resolved"


def test_signal_loss_is_not_counted_before_monitoring_began(monitor):
    monitor.feed(0, 240)  # 4 minutes of a good trace: the 5-minute window is not yet full
    assert monitor.alerts("fhr_signal_loss") == []


def maternal(t: float) -> float:
    return 85 + 3 * math.sin(2 * math.pi * t / 30)


def test_fetal_channel_recording_the_mother_raises_the_technical_alarm(monitor):
    monitor.feed(0, 600, hr=maternal)
    monitor.feed(600, 780, fhr=lambda t: maternal(t) + 2, hr=maternal)
    [alert] = monitor.alerts("fhr_maternal_coincidence")
    assert alert.priority == "medium" and alert.state == "active"
    assert "recording the mother" in alert.message


def test_a_patient_override_switches_the_coincidence_alarm_off(monitor):
    values = {**CtgLimits().as_dict(), "coincidence_bpm": None}
    ctg_alarm_limits_set(patient=monitor.patient, values=values)
    monitor.feed(0, 600, hr=maternal)
    monitor.feed(600, 780, fhr=lambda t: maternal(t) + 2, hr=maternal)
    assert monitor.alerts("fhr_maternal_coincidence") == []


def test_a_patient_override_changes_the_signal_loss_threshold(monitor):
    values = {**CtgLimits().as_dict(), "signal_loss_percent": 60}
    ctg_alarm_limits_set(patient=monitor.patient, values=values)
    monitor.feed(0, 600)
    monitor.feed(600, 780, fhr=lambda t: None)  # 60 % of the last 5 minutes: not more
    assert monitor.alerts("fhr_signal_loss") == []


# --- Cost: at most one analysis per patient every few seconds ---------------------------------


def _stored(patient, second: float, metric: str = "fetal_heart_rate") -> StoredReading:
    at = T0 + timedelta(seconds=second)
    return StoredReadingFactory(
        id=int(second) + 1, patient=patient, metric=metric, value=140, recorded_at=at
    )


def test_a_patient_is_analysed_at_most_every_few_seconds(
    obstetric_patient, settings, django_assert_num_queries, django_assert_max_num_queries
):
    settings.ALARM_CTG_EVALUATE_SECONDS = 5
    # The window, the patient's settings, its latest classification and (changed) its write.
    with django_assert_max_num_queries(4):
        ctg_alarms_evaluate(stored=[_stored(obstetric_patient, 0)])
    with django_assert_num_queries(0):
        ctg_alarms_evaluate(stored=[_stored(obstetric_patient, 1)])
        ctg_alarms_evaluate(stored=[_stored(obstetric_patient, 4.9)])
    with django_assert_max_num_queries(4):
        ctg_alarms_evaluate(stored=[_stored(obstetric_patient, 5)])


def test_heart_rate_readings_alone_do_not_run_the_ctg_rules(
    obstetric_patient, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert ctg_alarms_evaluate(stored=[_stored(obstetric_patient, 0, "heart_rate")]) == []


# --- The per-patient settings API -------------------------------------------------------------


def test_ctg_alarm_settings_api(nurse_api, obstetric_patient):
    url = f"/api/patients/{obstetric_patient.id}/ctg-alarm-limits/"
    body = nurse_api.get(url).json()
    assert body == {"patient": obstetric_patient.id, **CtgLimits().as_dict()}
    assert body["source"] == "default"

    changed = nurse_api.put(url, {"signal_loss_percent": 30, "coincidence_bpm": None})
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["source"] == "patient"
    assert (body["signal_loss_percent"], body["coincidence_bpm"]) == (30, None)
    assert body["signal_loss_minutes"] == CtgLimits().signal_loss_minutes
    assert nurse_api.get(url).json() == body

    error = assert_error(nurse_api.put(url, {"signal_loss_percent": 101}), 400, "validation_error")
    assert set(error["details"]) == {"signal_loss_percent"}
    error = assert_error(nurse_api.put(url, {"signal_loss_minutes": None}), 400)
    assert set(error["details"]) == {"signal_loss_minutes"}

    assert nurse_api.delete(url).status_code == 204
    assert nurse_api.get(url).json()["source"] == "default"


def test_ctg_alarm_settings_are_for_visible_obstetric_patients(nurse_api, patient):
    url = f"/api/patients/{patient.id}/ctg-alarm-limits/"
    error = assert_error(nurse_api.put(url, {"signal_loss_percent": 30}), 400)
    assert set(error["details"]) == {"patient"}
    stranger = PatientFactory(monitoring_profile="obstetric")
    assert_error(nurse_api.get(f"/api/patients/{stranger.id}/ctg-alarm-limits/"), 404)
