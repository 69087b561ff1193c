"""The evaluator's CTG window cache must give, for every evaluation, exactly the series (and so
the analysis) that reading the whole window from the database gives."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from alerts.ctg_rules import _grid_part
from alerts.ctg_window import CtgWindows
from ctg.analysis import ctg_analyse, ctg_analyse_series, per_second
from monitoring.readings import readings_store
from monitoring.selectors import CTG_METRICS, readings_per_second
from testing.factories import PatientFactory, ReadingInFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _value(metric: str, t: float) -> int:
    if metric == "fetal_heart_rate":
        return round(140 + 6 * math.sin(t / 7) + (25 if int(t) % 400 < 40 else 0))
    if metric == "uterine_activity":
        return round(10 + 50 * max(0.0, math.sin(t / 30)))
    return round(80 + 3 * math.sin(t / 11))


def _store(patient, seconds: range, *, offset: float = 0.0, metrics=CTG_METRICS) -> datetime:
    """Two readings a second of every metric for ``seconds`` (from T0), moved by ``offset``;
    returns the earliest recorded_at (what a batch of them tells the cache)."""
    readings = [
        ReadingInFactory(
            patient=patient,
            metric=metric,
            value=_value(metric, s + half + offset),
            recorded_at=T0 + timedelta(seconds=s + half + offset),
        )
        for s in seconds
        for half in (0.0, 0.5)
        for metric in metrics
    ]
    readings_store(readings=readings)
    return min(r.recorded_at for r in readings)


def _full(patient, end: datetime) -> dict[str, list[float | None]]:
    start = end - WINDOW
    series = readings_per_second(patient_id=patient.id, start=start, end=end)
    return {
        m: per_second(s, start=start.timestamp(), end=end.timestamp()) for m, s in series.items()
    }


def _at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


@pytest.fixture
def patient():
    return PatientFactory(monitoring_profile="obstetric")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def windows(clock):
    return CtgWindows(clock=clock)


def _evaluate(windows, patient, end_second: int, *, earliest: datetime | None = None):
    if earliest is not None:
        windows.seen({patient.id: earliest}, keep=[patient.id])
    end = _at(end_second)
    return windows.series(patient_id=patient.id, start=end - WINDOW, end=end)


def test_deltas_give_what_the_whole_window_gives_and_so_the_same_analysis(
    windows, clock, patient, django_assert_num_queries
):
    _store(patient, range(0, 2400))
    assert _evaluate(windows, patient, 2400) == _full(patient, _at(2400))
    assert windows.last_read(patient.id) == "refresh"
    cached: dict[str, list[float | None]] = {}
    for end in range(2405, 2460, 5):
        earliest = _store(patient, range(end - 5, end))
        clock.now += 5
        with django_assert_num_queries(1):
            cached = _evaluate(windows, patient, end, earliest=earliest)
        assert windows.last_read(patient.id) == "delta"
        assert cached == _full(patient, _at(end))
    series = readings_per_second(patient_id=patient.id, start=_at(2455) - WINDOW, end=_at(2455))
    start, stop = (_at(2455) - WINDOW).timestamp(), _at(2455).timestamp()
    uncached = ctg_analyse(
        fhr=series["fetal_heart_rate"], ua=series["uterine_activity"], start=start, end=stop
    )
    assert uncached.decelerations or uncached.accelerations  # the trace has events to find
    assert (
        ctg_analyse_series(
            fhr=cached["fetal_heart_rate"], ua=cached["uterine_activity"], start=start, end=stop
        )
        == uncached
    )


def test_a_late_reading_for_a_second_already_held_is_averaged_in(windows, clock, patient):
    _store(patient, range(0, 1900))
    before = _evaluate(windows, patient, 1900)
    # A device frame resent late: another reading for second 1850, which changes its mean.
    late = T0 + timedelta(seconds=1850.25)
    readings_store(
        readings=[
            ReadingInFactory(
                patient=patient, metric="fetal_heart_rate", value=200, recorded_at=late
            )
        ]
    )
    earliest = min(late, _store(patient, range(1900, 1905)))
    clock.now += 5
    after = _evaluate(windows, patient, 1905, earliest=earliest)
    assert windows.last_read(patient.id) == "delta"
    assert after == _full(patient, _at(1905))
    index = 1850 - (1905 - 1800)
    assert after["fetal_heart_rate"][index] != before["fetal_heart_rate"][index + 5]


def test_a_reading_committed_after_the_read_of_its_batch_is_read_at_the_next(
    windows, clock, patient
):
    _store(patient, range(0, 1900))
    _evaluate(windows, patient, 1900)
    # The batch is in the stream before its transaction commits: the read misses it...
    batch = range(1900, 1905)
    earliest = _at(1900)
    clock.now += 5
    missed = _evaluate(windows, patient, 1905, earliest=earliest)
    assert missed["fetal_heart_rate"][-5:] == [None] * 5
    _store(patient, batch)  # ... and it commits
    # The next evaluation's batch holds only newer readings; the seconds are read again.
    clock.now += 5
    later = _evaluate(windows, patient, 1910, earliest=_store(patient, range(1905, 1910)))
    assert windows.last_read(patient.id) == "delta"
    assert later == _full(patient, _at(1910))


def test_a_reading_older_than_the_window_reads_the_window_again(windows, clock, patient):
    _store(patient, range(0, 1900))
    _evaluate(windows, patient, 1900)
    old = _store(patient, range(10, 11), offset=0.25)
    clock.now += 5
    assert _evaluate(windows, patient, 1905, earliest=old) == _full(patient, _at(1905))
    assert windows.last_read(patient.id) == "refresh"


def test_a_patient_with_a_gap_in_the_readings(windows, clock, patient):
    _store(patient, range(0, 1200))
    assert _evaluate(windows, patient, 1200) == _full(patient, _at(1200))
    # Ten minutes of readings' time without any (the monitor was unplugged), then more.
    earliest = _store(patient, range(1800, 1830))
    clock.now += 2
    assert _evaluate(windows, patient, 1830, earliest=earliest) == _full(patient, _at(1830))
    assert windows.last_read(patient.id) == "delta"
    # Far beyond the window: nothing of the old one is left.
    earliest = _store(patient, range(5000, 5010))
    clock.now += 2
    assert _evaluate(windows, patient, 5010, earliest=earliest) == _full(patient, _at(5010))


def test_the_window_is_read_whole_every_refresh_interval(clock, patient):
    windows = CtgWindows(clock=clock, forget_seconds=10_000)  # (not forgotten meanwhile)
    _store(patient, range(0, 1900))
    _evaluate(windows, patient, 1900)
    refreshed = clock.now
    for end in (1905, 1910):
        clock.now += 5
        _evaluate(windows, patient, end, earliest=_store(patient, range(end - 5, end)))
        assert windows.last_read(patient.id) == "delta"
    clock.now = refreshed + windows.refresh_seconds
    earliest = _store(patient, range(1910, 1915))
    assert _evaluate(windows, patient, 1915, earliest=earliest) == _full(patient, _at(1915))
    assert windows.last_read(patient.id) == "refresh"


def test_readings_not_yet_committed_stand_in_until_the_database_has_them(windows, clock, patient):
    """A batch can reach the evaluator before its transaction commits: its readings fill the
    seconds the query did not return, without entering the cache's own grids, until the
    database returns them; a batch never committed is dropped after ``pending_seconds``."""
    _store(patient, range(0, 1900))
    _evaluate(windows, patient, 1900)
    readings = [
        ReadingInFactory(
            patient=patient,
            metric="fetal_heart_rate",
            value=bpm,
            recorded_at=T0 + timedelta(seconds=second),
        )
        for second, bpm in ((1900, 150), (1900.5, 152), (1901, 90), (1906, 120))
    ]
    clock.now += 1
    windows.seen(
        {patient.id: readings[0].recorded_at}, keep=[patient.id], readings={patient.id: readings}
    )
    series = _evaluate(windows, patient, 1905)
    assert series["fetal_heart_rate"][-5:] == [151.0, 90.0, None, None, None]
    assert series["uterine_activity"][-5:] == [None] * 5
    # The cache kept what the database gave: committed now, the database's values count.
    readings_store(readings=readings[:3])
    clock.now += 1
    assert _evaluate(windows, patient, 1905) == _full(patient, _at(1905))
    # The reading of second 1906 was never committed: it counts until it has waited too long.
    assert _evaluate(windows, patient, 1907)["fetal_heart_rate"][-1] == 120.0
    while clock.now - 1002 <= windows.pending_seconds:  # other batches meanwhile
        clock.now += 5
        windows.seen({patient.id: _at(1906)}, keep=[patient.id])
    assert _evaluate(windows, patient, 1907)["fetal_heart_rate"][-1] is None


def test_a_patient_not_seen_for_a_while_is_forgotten_and_read_whole(windows, clock, patient):
    # Its partition may have been evaluated by another process meanwhile.
    _store(patient, range(0, 1900))
    _evaluate(windows, patient, 1900)
    late = _store(patient, range(1000, 1001), offset=0.25)  # seen by the other process only
    clock.now += windows.forget_seconds + 1
    windows.seen({}, keep=[])
    assert windows.last_read(patient.id) is None and len(windows) == 0
    earliest = _store(patient, range(1900, 1905))
    assert late < earliest
    assert _evaluate(windows, patient, 1905, earliest=earliest) == _full(patient, _at(1905))
    assert windows.last_read(patient.id) == "refresh"


def test_the_cache_holds_at_most_its_patients_and_none_for_heart_rate_alone(clock):
    windows = CtgWindows(clock=clock, max_patients=2)
    a, b, c, adult = (PatientFactory(monitoring_profile="obstetric") for _ in range(4))
    at = _at(0)
    windows.seen({a.id: at, b.id: at, adult.id: at}, keep=[a.id, b.id])
    clock.now += 1
    windows.seen({c.id: at, b.id: at}, keep=[c.id, b.id])
    assert len(windows) == 2
    assert windows.last_read(a.id) is None  # the least recently seen went
    assert windows.last_read(adult.id) is None
    assert windows.last_read(b.id) == "" and windows.last_read(c.id) == ""


@pytest.mark.parametrize(("start", "end"), [(-5, 10), (0, 20), (15, 25), (-10, -2), (30, 40)])
def test_a_part_of_a_grid_is_what_per_second_gives(start, end):
    samples = [(100.0 + k, float(k)) for k in range(20) if k % 3]
    grid = per_second(samples, start=100.0, end=120.0)
    assert _grid_part(grid, 100.0, 100.0 + start, 100.0 + end) == per_second(
        samples, start=100.0 + start, end=100.0 + end
    )
