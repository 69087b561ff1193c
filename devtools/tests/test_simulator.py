from __future__ import annotations

import random
import statistics

import pytest

from clinical.tokens import token_hash
from devtools.simulator import EpisodeConfig, adult_trace, demo_devices, fetal_trace


def _run(trace, seconds: int) -> list[int]:
    return [trace.next(float(t)) for t in range(seconds)]


def test_adult_trace_is_a_plausible_resting_heart_rate():
    values = _run(adult_trace(random.Random(1), EpisodeConfig(enabled=False)), 600)
    assert 55 <= statistics.mean(values) <= 100
    assert statistics.pstdev(values) > 1  # variability, not a flat line
    assert all(20 <= v <= 300 for v in values)


def test_fetal_trace_has_a_normal_baseline_and_variability():
    values = _run(fetal_trace(random.Random(2), EpisodeConfig(enabled=False)), 1200)
    assert 110 <= statistics.median(values) <= 160
    assert statistics.pstdev(values) >= 3
    assert all(50 <= v <= 240 for v in values)


@pytest.mark.parametrize(
    ("make", "limit", "hold"),
    [(adult_trace, 40, 30), (fetal_trace, 99, 180)],
)
def test_bradycardia_episodes_last_longer_than_the_alarm_hold(make, limit, hold):
    episodes = EpisodeConfig(every=120, adult_seconds=45, fetal_seconds=200)
    trace = make(random.Random(3), episodes)
    values = _run(trace, 3600)
    assert trace.episodes_started >= 2
    longest = run = 0
    for v in values:
        run = run + 1 if v <= limit else 0
        longest = max(longest, run)
    assert longest > hold


@pytest.mark.django_db
def test_demo_devices_rotate_tokens_of_active_assigned_devices(device, place):
    from testing.factories import DeviceFactory

    DeviceFactory(patient=None, place=place)
    DeviceFactory(is_active=False)
    specs = demo_devices()
    assert len(specs) == 1
    device.refresh_from_db()
    assert device.token_hash == token_hash(specs[0].token)
    assert specs[0].profile == "adult"
