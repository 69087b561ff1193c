"""Alarm rules with controlled time: every reading's recorded_at is given explicitly."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from alerts import batch_evaluation
from alerts import state as alarms
from alerts.batch_evaluation import alarms_evaluate
from alerts.models import Alert, AlertEvent
from alerts.offline import alarms_offline_scan
from alerts.rules import DEFAULT_LIMITS, BandState, band_step
from alerts.state import redis_client, state_key
from alerts.vocabulary import CTG_KINDS
from common import redis_clients
from testing.factories import AlarmLimitFactory, DeviceFactory, PatientFactory, StoredReadingFactory

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
_ids = itertools.count(1)


# Rule state lives in Redis; each test starts without any.
pytestmark = pytest.mark.usefixtures("clean_alarm_state")


def reading(patient, bpm: int, second: float, *, metric: str = "heart_rate", device=None):
    n = next(_ids)
    at = T0 + timedelta(seconds=second)
    return StoredReadingFactory(
        id=n, seq=n, patient=patient, device=device, metric=metric, value=bpm, recorded_at=at
    )


def stream(patient, bpm: int, start: float, end: float, step: float = 1.0, **kw):
    """Readings at ``bpm`` every ``step`` seconds from ``start`` to ``end`` inclusive."""
    count = round((end - start) / step) + 1
    return [reading(patient, bpm, start + i * step, **kw) for i in range(count)]


def feed(readings, batch: int = 1):
    """Evaluate in batches of ``batch`` readings, as the ingest batcher would."""
    for i in range(0, len(readings), batch):
        alarms_evaluate(stored=readings[i : i + batch], now=readings[i].recorded_at)


def open_alerts(patient):
    return list(Alert.objects.filter(patient=patient).exclude(state="resolved"))


# --- Bands: every boundary of every default ---------------------------------------------------


# Each default's bands, lowest first: (lowest bpm, highest bpm, expected class).
DEFAULT_BANDS = {
    # NEWS2 adult pulse: <=40 high, 41-50 medium, 51-90 normal, 91-110 low, 111-130 medium,
    # >=131 high.
    "adult:heart_rate": [
        (20, 40, ("brady", 3)),
        (41, 50, ("brady", 2)),
        (51, 90, (None, 0)),
        (91, 110, ("tachy", 1)),
        (111, 130, ("tachy", 2)),
        (131, 220, ("tachy", 3)),
    ],
    # MEWT maternal heart rate: <50 high, 111-130 medium, >130 high.
    "obstetric:heart_rate": [
        (20, 49, ("brady", 3)),
        (50, 110, (None, 0)),
        (111, 130, ("tachy", 2)),
        (131, 220, ("tachy", 3)),
    ],
    # FIGO 2015 fetal heart rate: <100 high, <110 medium, 110-160 normal, >160 medium.
    "obstetric:fetal_heart_rate": [
        (50, 99, ("brady", 3)),
        (100, 109, ("brady", 2)),
        (110, 160, (None, 0)),
        (161, 240, ("tachy", 2)),
    ],
}


@pytest.mark.parametrize(
    ("limits", "bpm", "expected"),
    [
        (limits, bpm, expected)
        for limits, bands in DEFAULT_BANDS.items()
        for lowest, highest, expected in bands
        for bpm in (lowest, highest)
    ],
)
def test_default_bands_classify_every_boundary(limits, bpm, expected):
    assert DEFAULT_LIMITS[limits].classify(bpm) == expected


# Each default's band edges that raise an alert: (bpm, hold seconds, kind, priority).
RAISING_EDGES = {
    "adult:heart_rate": [
        (40, 10, "bradycardia", "high"),
        (50, 20, "bradycardia", "medium"),
        (91, 30, "tachycardia", "low"),
        (111, 20, "tachycardia", "medium"),
        (131, 10, "tachycardia", "high"),
    ],
    "obstetric:heart_rate": [
        (49, 10, "bradycardia", "high"),
        (111, 20, "tachycardia", "medium"),
        (131, 10, "tachycardia", "high"),
    ],
    "obstetric:fetal_heart_rate": [
        (99, 180, "fetal_bradycardia", "high"),
        (109, 600, "fetal_bradycardia", "medium"),
        (161, 600, "fetal_tachycardia", "medium"),
    ],
}


@pytest.mark.parametrize(
    ("profile", "metric", "bpm", "hold", "kind", "priority"),
    [(*limits.split(":"), *edge) for limits, edges in RAISING_EDGES.items() for edge in edges],
)
@pytest.mark.django_db
def test_each_band_raises_exactly_at_its_hold_time(profile, metric, bpm, hold, kind, priority):
    patient = PatientFactory(monitoring_profile=profile)
    step = 10 if hold >= 180 else 1
    # A fetal heart rate fed one reading per 10 s is also a CTG with 90 % signal loss (its own
    # alarm, tested with the CTG rules): this test is about the band's alarm alone.
    band_alerts = lambda: [a for a in open_alerts(patient) if a.kind not in CTG_KINDS]  # noqa: E731
    # One step short of the hold time: nothing yet.
    feed(stream(patient, bpm, 0, hold - step, step, metric=metric))
    assert band_alerts() == []
    # The reading that completes the hold time raises it.
    feed([reading(patient, bpm, hold, metric=metric)])
    (alert,) = band_alerts()
    assert (alert.kind, alert.priority, alert.state) == (kind, priority, "active")
    assert f"{bpm} bpm" in alert.message


# --- Hold times, repeats, recovery -----------------------------------------------------------


@pytest.mark.django_db
def test_a_sustained_condition_raises_once(patient):
    feed(stream(patient, 45, 0, 120))
    (alert,) = Alert.objects.filter(patient=patient)
    assert (alert.kind, alert.priority) == ("bradycardia", "medium")
    assert list(alert.events.values_list("action", flat=True)) == ["raised"]


@pytest.mark.django_db
def test_transients_raise_nothing(patient):
    # Spikes and dips shorter than any hold time, separated by normal readings.
    readings = [
        *stream(patient, 35, 0, 8),
        *stream(patient, 75, 9, 12),
        *stream(patient, 150, 13, 21),
        *stream(patient, 75, 22, 60),
    ]
    feed(readings, batch=7)
    assert not Alert.objects.filter(patient=patient).exists()
    # A transient that came and went leaves no rule state behind.
    assert redis_client().get(state_key(patient.id, "heart_rate")) is None


@pytest.mark.django_db
def test_recovery_resolves_after_the_clear_time(patient, settings):
    settings.ALARM_CLEAR_SECONDS = 5
    feed(stream(patient, 45, 0, 30))
    feed(stream(patient, 72, 31, 35))  # back in range for 4 s: still open
    (alert,) = open_alerts(patient)
    feed([reading(patient, 72, 36)])  # 5 s in range: resolved
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert alert.resolved_at is not None
    assert list(alert.events.values_list("action", flat=True)) == ["raised", "resolved"]
    assert redis_client().get(state_key(patient.id, "heart_rate")) is None


@pytest.mark.django_db
def test_a_single_normal_artefact_does_not_resolve_an_episode(patient, settings):
    settings.ALARM_CLEAR_SECONDS = 5
    feed([*stream(patient, 45, 0, 30), reading(patient, 70, 31), *stream(patient, 45, 32, 90)])
    (alert,) = Alert.objects.filter(patient=patient)
    assert alert.state == "active"
    assert list(alert.events.values_list("action", flat=True)) == ["raised"]


@pytest.mark.django_db
def test_without_a_clear_time_the_first_normal_reading_resolves(patient, settings):
    settings.ALARM_CLEAR_SECONDS = 0
    feed([*stream(patient, 45, 0, 30), reading(patient, 70, 31)])
    assert Alert.objects.get(patient=patient).state == "resolved"


@pytest.mark.django_db
def test_worsening_escalates_the_open_alert_instead_of_a_second_one(patient):
    feed(stream(patient, 45, 0, 25))  # medium after 20 s
    feed(stream(patient, 38, 26, 40))  # high band since 26 s, held 10 s at 36 s
    (alert,) = Alert.objects.filter(patient=patient)
    assert (alert.priority, alert.state) == ("high", "active")
    assert list(alert.events.values_list("action", flat=True)) == ["raised", "updated"]


@pytest.mark.django_db
def test_escalation_reactivates_an_acknowledged_alert(patient, doctor):
    from alerts.services import alert_acknowledge

    feed(stream(patient, 45, 0, 25))
    alert = Alert.objects.get(patient=patient)
    alert_acknowledge(alert_id=alert.id, user=doctor)
    feed(stream(patient, 38, 26, 40))
    alert.refresh_from_db()
    assert (alert.priority, alert.state, alert.acknowledged_by) == ("high", "active", None)


@pytest.mark.django_db
def test_improving_keeps_the_priority_raised(patient):
    feed([*stream(patient, 38, 0, 15), *stream(patient, 45, 16, 60)])
    (alert,) = Alert.objects.filter(patient=patient)
    assert (alert.priority, alert.state) == ("high", "active")


@pytest.mark.django_db
def test_crossing_to_the_other_side_resolves_and_starts_a_new_condition(patient):
    feed([*stream(patient, 45, 0, 25), *stream(patient, 135, 26, 40)])
    brady = Alert.objects.get(patient=patient, kind="bradycardia")
    tachy = Alert.objects.get(patient=patient, kind="tachycardia")
    assert brady.state == "resolved"
    assert (tachy.priority, tachy.state) == ("high", "active")


@pytest.mark.django_db
def test_a_new_episode_after_resolution_raises_a_new_alert(patient, settings):
    settings.ALARM_CLEAR_SECONDS = 0
    feed([*stream(patient, 45, 0, 25), reading(patient, 70, 26), *stream(patient, 45, 27, 60)])
    assert list(
        Alert.objects.filter(patient=patient).order_by("id").values_list("state", flat=True)
    ) == [
        "resolved",
        "active",
    ]


@pytest.mark.django_db
def test_batches_and_single_readings_give_the_same_alerts(patient, ward):
    other = PatientFactory(ward=ward)
    readings = [*stream(patient, 45, 0, 40), *stream(patient, 70, 41, 50)]
    feed(readings, batch=1)
    feed([*stream(other, 45, 0, 40), *stream(other, 70, 41, 50)], batch=17)
    mine = Alert.objects.filter(patient=patient).values_list("kind", "priority", "state")
    theirs = Alert.objects.filter(patient=other).values_list("kind", "priority", "state")
    assert list(mine) == list(theirs) == [("bradycardia", "medium", "resolved")]


@pytest.mark.django_db
def test_out_of_order_readings_in_a_batch_are_evaluated_in_time_order(patient):
    readings = stream(patient, 38, 0, 12)
    alarms_evaluate(stored=list(reversed(readings)), now=T0)
    assert Alert.objects.get(patient=patient).priority == "high"


@pytest.mark.django_db
def test_rule_state_is_shared_through_redis_not_process_memory(patient):
    """Half of the hold time evaluated by one process, the rest by another."""
    feed(stream(patient, 38, 0, 5))
    saved = BandState.decode(
        cast("bytes | None", redis_client().get(state_key(patient.id, "heart_rate")))
    )
    assert saved.side == "brady" and saved.starts[3] == T0.timestamp()
    # Whatever a process might cache is gone: only Redis carries the episode start.
    redis_clients._client.cache_clear()
    feed(stream(patient, 38, 6, 10))
    assert Alert.objects.get(patient=patient).priority == "high"


def test_band_step_is_pure():
    limits = DEFAULT_LIMITS["adult:heart_rate"]
    state = BandState()
    state2, transitions = band_step(state, limits=limits, bpm=38, at=100.0, clear_seconds=5)
    assert state == BandState() and transitions == []
    assert state2.side == "brady" and state2.starts == {2: 100.0, 3: 100.0}
    state3, transitions = band_step(state2, limits=limits, bpm=38, at=110.0, clear_seconds=5)
    assert [(t.action, t.level) for t in transitions] == [("raise", 3)]
    assert state3.raised == 3


# --- Overrides --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_patient_override_applies(patient):
    bands = {"brady_high": 45, "brady_medium": 60, "tachy_medium": 150, "tachy_high": 170}
    AlarmLimitFactory(patient=patient, **bands, hold_high_seconds=5, hold_medium_seconds=15)
    feed(stream(patient, 120, 0, 60))  # NEWS2 would raise a medium tachycardia
    assert not Alert.objects.filter(patient=patient).exists()
    feed(stream(patient, 44, 61, 66))  # high after the patient's own 5 s
    assert Alert.objects.get(patient=patient, kind="bradycardia").priority == "high"


@pytest.mark.django_db
def test_settings_override_the_default_hold_times(patient, settings):
    settings.ALARM_LIMITS = {"adult:heart_rate": {"hold_medium_seconds": 60}}
    feed(stream(patient, 45, 0, 59))
    assert not Alert.objects.filter(patient=patient).exists()
    feed([reading(patient, 45, 60)])
    assert Alert.objects.filter(patient=patient, priority="medium").exists()


# --- Cost on the hot path ---------------------------------------------------------------------


class _CountingRedis:
    def __init__(self, client):
        self.client = client
        self.round_trips = 0

    def pipeline(self, *args, **kwargs):
        counter = self
        pipe = self.client.pipeline(*args, **kwargs)
        original = pipe.execute

        def execute(*a, **k):
            counter.round_trips += 1
            return original(*a, **k)

        pipe.execute = execute
        return pipe

    def __getattr__(self, name):
        raise AssertionError(f"unexpected Redis call {name}")


@pytest.mark.django_db
def test_a_steady_batch_costs_two_queries_and_one_redis_round_trip(
    ward, django_assert_num_queries, monkeypatch
):
    """The patients' profiles (clinical's selector) and their own limits: two queries, and
    one Redis round trip, whatever the size of the batch."""
    patients = [PatientFactory(ward=ward) for _ in range(50)]
    devices = {p.id: DeviceFactory(patient=p) for p in patients}
    counting = _CountingRedis(redis_client())
    monkeypatch.setattr(batch_evaluation, "redis_client", lambda: counting)
    # 500 readings, 50 patients: half in a held brady band (already raised), half normal;
    # every patient seen before by this evaluator (the first sight reads the open alerts).
    feed([r for p in patients[:25] for r in stream(p, 45, 0, 25, device=devices[p.id])], 10_000)
    feed([r for p in patients[25:] for r in stream(p, 75, 0, 5, device=devices[p.id])], 10_000)
    counting.round_trips = 0
    batch = [
        reading(p, 45 if i < 25 else 75, 30 + k, device=devices[p.id])
        for k in range(10)
        for i, p in enumerate(patients)
    ]
    with django_assert_num_queries(2):
        changed = alarms_evaluate(stored=batch, now=T0)
    assert changed == []
    assert counting.round_trips == 1


# --- Device offline ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_silent_device_raises_offline_once_and_a_reading_resolves_it(patient, settings):
    settings.DEVICE_OFFLINE_SECONDS = 30
    device = DeviceFactory(patient=patient, last_seen_at=T0)
    assert alarms_offline_scan(now=T0 + timedelta(seconds=30)) == []
    (alert,) = alarms_offline_scan(now=T0 + timedelta(seconds=31))
    assert (alert.kind, alert.priority, alert.device_id) == ("device_offline", "low", device.id)
    assert alarms_offline_scan(now=T0 + timedelta(seconds=40)) == []
    assert len(open_alerts(patient)) == 1

    alarms_evaluate(
        stored=[reading(patient, 75, 45, device=device)], now=T0 + timedelta(seconds=45)
    )
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert list(alert.events.values_list("action", flat=True)) == ["raised", "resolved"]


@pytest.mark.django_db
def test_the_offline_scan_resolves_when_the_device_is_seen_again(patient, settings):
    settings.DEVICE_OFFLINE_SECONDS = 30
    device = DeviceFactory(patient=patient, last_seen_at=T0)
    (alert,) = alarms_offline_scan(now=T0 + timedelta(seconds=60))
    redis_client().delete(alarms.offline_key(patient.id))  # the fast path missed it
    device.last_seen_at = T0 + timedelta(seconds=70)
    device.save(update_fields=["last_seen_at"])
    (resolved,) = alarms_offline_scan(now=T0 + timedelta(seconds=75))
    assert resolved.id == alert.id and resolved.state == "resolved"


@pytest.mark.django_db
def test_inactive_unassigned_and_never_seen_devices_are_not_offline(patient, ward, settings):
    settings.DEVICE_OFFLINE_SECONDS = 30
    DeviceFactory(patient=patient, last_seen_at=T0, is_active=False)
    DeviceFactory(patient=None, place=ward.place, last_seen_at=T0)
    DeviceFactory(patient=PatientFactory(ward=ward), last_seen_at=None)
    assert alarms_offline_scan(now=T0 + timedelta(hours=1)) == []


@pytest.mark.django_db
def test_offline_and_clinical_alarms_are_separate_kinds(patient, settings):
    settings.DEVICE_OFFLINE_SECONDS = 30
    device = DeviceFactory(patient=patient, last_seen_at=T0)
    alarms_offline_scan(now=T0 + timedelta(seconds=60))
    feed(stream(patient, 45, 61, 90, device=device))
    kinds = dict(Alert.objects.filter(patient=patient).values_list("kind", "state"))
    assert kinds == {"device_offline": "resolved", "bradycardia": "active"}
    assert AlertEvent.objects.filter(alert__patient=patient).count() == 3


@pytest.mark.django_db
def test_a_connected_device_that_stops_sending_readings_goes_offline(patient, settings):
    """Connection presence keeps last_seen_at fresh; the last reading decides."""
    settings.DEVICE_OFFLINE_SECONDS = 30
    device = DeviceFactory(patient=patient, last_seen_at=T0 + timedelta(seconds=60))
    alarms_evaluate(stored=[reading(patient, 75, 0, device=device)], now=T0)
    assert alarms_offline_scan(now=T0 + timedelta(seconds=30)) == []
    (alert,) = alarms_offline_scan(now=T0 + timedelta(seconds=31))
    assert alert.kind == "device_offline"
    assert "JAN-" in alert.message and "31 s" in alert.message


@pytest.mark.django_db
def test_an_offline_alarm_resolves_when_its_device_is_unassigned_or_deactivated(
    patient, ward, settings
):
    settings.DEVICE_OFFLINE_SECONDS = 30
    device = DeviceFactory(patient=patient, last_seen_at=T0)
    other = DeviceFactory(patient=PatientFactory(ward=ward), last_seen_at=T0)
    first, second = alarms_offline_scan(now=T0 + timedelta(seconds=60))
    device.patient = None
    device.save(update_fields=["patient"])
    other.is_active = False
    other.save(update_fields=["is_active"])
    resolved = alarms_offline_scan(now=T0 + timedelta(seconds=65))
    assert {a.id for a in resolved} == {first.id, second.id}
    assert all(a.state == "resolved" for a in resolved)


@pytest.mark.django_db
def test_a_pulse_rate_raises_no_heart_rate_alarm_and_does_not_end_one(patient):
    # The heart-rate bands apply to the ECG heart rate only (docs/alarms.md, "Sources"): an
    # oximeter's pulse of 30 raises nothing, and its normal pulse beside an ECG bradycardia
    # neither resolves nor doubles the ECG alarm.
    feed(stream(patient, 30, 0, 60, metric="pulse_rate"))
    assert open_alerts(patient) == []
    feed(stream(patient, 35, 61, 80) + stream(patient, 75, 81, 140, metric="pulse_rate"))
    (alert,) = open_alerts(patient)
    assert alert.kind == "bradycardia"
