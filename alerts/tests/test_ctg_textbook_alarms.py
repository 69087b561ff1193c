"""Textbook CTG traces through the alarm evaluator (FIGO 2015), with controlled time: readings
stored with explicit times and evaluated by an explicit drain, chunk by chunk, as the live
evaluator would. What the ward sees: the alarms (band and CTG rules) and the tile's row."""

from __future__ import annotations

import math

import pytest

from alerts.models import Alert, CtgClassification
from alerts.tests.test_ctg_alarms import Monitor, contractions

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_alarm_state")]

UA = contractions(240)  # a contraction every 4 minutes


def at(level: float):
    """A fetal heart rate around ``level`` with normal variability (about 10 bpm bandwidth)."""

    def fhr(t: float) -> float:
        return level + 4 * math.sin(2 * math.pi * t / 23) + 1.5 * math.sin(2 * math.pi * t / 7)

    return fhr


class Ward:
    """The monitor plus what the ward sees after every chunk."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.seen: list[tuple[int, CtgClassification, set[str]]] = []

    def feed(self, start: int, end: int, level: float, *, chunk: int = 30) -> None:
        t = start
        while t < end:
            stop = min(t + chunk, end)
            self.monitor.feed(t, stop, fhr=at(level), ua=UA, chunk=chunk)
            row = CtgClassification.objects.get(patient=self.monitor.patient)
            self.seen.append((stop, row, self.active()))
            t = stop

    def active(self) -> set[str]:
        return set(
            Alert.objects.filter(patient=self.monitor.patient)
            .exclude(state="resolved")
            .values_list("kind", flat=True)
        )


@pytest.fixture
def ward(alarms_drain):
    return Ward(Monitor(alarms_drain))


def test_fetal_tachycardia_at_170_for_15_minutes(ward):
    ward.feed(0, 1200, 140, chunk=60)
    assert ward.active() == set()
    ward.feed(1200, 2100, 170, chunk=60)
    [alert] = ward.monitor.alerts("fetal_tachycardia")
    assert alert.priority == "medium" and alert.state == "active"
    # Raised once the rate had been above 160 for 10 minutes (FIGO), not before.
    raised = [stop for stop, _row, active in ward.seen if "fetal_tachycardia" in active]
    assert 1200 + 600 <= raised[0] <= 1200 + 600 + 60
    _stop, row, active = ward.seen[-1]
    assert row.classification == "suspicious"
    assert row.baseline_bpm == 170
    assert "Baseline 170 bpm (above 160)." in row.reasons
    assert "ctg_pathological" not in active and "prolonged_deceleration" not in active


def test_a_12_minute_bradycardia_at_90_raises_the_high_alarms(ward):
    ward.feed(0, 1200, 140)
    assert ward.active() == set()
    ward.feed(1200, 1920, 90)
    active = ward.active()
    assert {"fetal_bradycardia", "ctg_pathological"} <= active
    [bradycardia] = ward.monitor.alerts("fetal_bradycardia")
    assert bradycardia.priority == "high"
    # The prolonged deceleration alarm came within a minute of its 3 minutes.
    first = next(stop for stop, _r, a in ward.seen if "prolonged_deceleration" in a)
    assert 1200 + 180 < first <= 1200 + 240
    [prolonged] = ward.monitor.alerts("prolonged_deceleration")
    assert prolonged.priority == "high"
    _stop, row, _active = ward.seen[-1]
    assert row.classification == "pathological"


@pytest.mark.parametrize("before", [720, 1200])
def test_a_prolonged_deceleration_alarm_stays_raised_until_the_rate_is_back(ward, before):
    """The issue's case, live: 6 minutes at 80 bpm after 12 (or 20) minutes at 140 (normal
    variability, a contraction every 4 minutes). The alarm is raised after 3 minutes, stays
    raised while the rate is down, resolves once it is back; the baseline is never 80."""
    back = before + 360
    ward.feed(0, before, 140)
    ward.feed(before, back, 80)
    ward.feed(back, back + 720, 140)
    down = [(stop, row, active) for stop, row, active in ward.seen if before < stop <= back]
    raised = [stop for stop, _row, active in down if "prolonged_deceleration" in active]
    assert raised and before + 180 < raised[0] <= before + 210
    assert all(stop >= raised[0] for stop in raised)
    assert raised == [stop for stop, _r, _a in down if stop >= raised[0]]  # never dropped
    [alert] = ward.monitor.alerts("prolonged_deceleration")
    assert alert.state == "resolved" and alert.resolved_at is not None
    after = [(stop, row, active) for stop, row, active in ward.seen if stop > back]
    # Resolved once the rate has been back for the clear time (30 s), not minutes later.
    cleared = next(stop for stop, _row, active in after if "prolonged_deceleration" not in active)
    assert cleared <= back + 90
    for _stop, row, _active in ward.seen:
        assert row.baseline_bpm != 80, (row.baseline_bpm, row.reasons)
        assert not any(r.startswith("Baseline 80") for r in row.reasons), row.reasons
    # After the recovery the tile reads the baseline before the deceleration.
    assert all(row.baseline_bpm == 140 for _s, row, _a in after)
