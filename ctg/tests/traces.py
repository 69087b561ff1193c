"""Synthetic CTG traces built so that the true answer is known."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ctg.analysis import Sample

T0 = 1_800_000_000.0  # an arbitrary whole second (2027-01-15)
HZ = 4


@dataclass(frozen=True)
class Shape:
    """An excursion from the baseline: ``delta`` bpm reached after ``ramp_in`` seconds, held,
    and back after ``ramp_out`` seconds; ``start`` and ``seconds`` bound it (seconds from T0).
    The default ramps (4 s) are as steep as a fetal heart rate changes: a step of tens of bpm
    within a second is an artefact of the monitor, and the analysis reads it so."""

    start: float
    seconds: float
    delta: float
    ramp_in: float = 4
    ramp_out: float = 4

    def at(self, t: float) -> float:
        x = t - self.start
        if x < 0 or x >= self.seconds:
            return 0.0
        if self.ramp_in and x < self.ramp_in:
            return self.delta * x / self.ramp_in
        left = self.seconds - x
        if self.ramp_out and left < self.ramp_out:
            return self.delta * left / self.ramp_out
        return self.delta


def fhr_trace(
    minutes: float,
    *,
    baseline: float | Callable[[float], float] = 140,
    amplitude: float | Callable[[float], float] = 4,
    period: float = 20,
    shapes: Sequence[Shape] = (),
    lost: Sequence[tuple[float, float]] = (),
    hz: int = HZ,
) -> list[Sample]:
    """A fetal heart rate at ``hz``: baseline + a sine of ``amplitude`` (bandwidth about twice
    that) + the shapes; no samples in the ``lost`` (start, end) seconds."""
    samples = []
    for k in range(int(minutes * 60 * hz)):
        x = k / hz
        if any(lo <= x < hi for lo, hi in lost):
            continue
        b = baseline(x) if callable(baseline) else baseline
        a = amplitude(x) if callable(amplitude) else amplitude
        value = b + a * math.sin(2 * math.pi * x / period) + sum(s.at(x) for s in shapes)
        samples.append((T0 + x, value))
    return samples


def ua_trace(
    minutes: float,
    *,
    every: float | None = None,
    first: float = 60,
    seconds: float = 60,
    peak: float = 60,
    tone: float = 10,
    hz: int = HZ,
) -> list[Sample]:
    """Uterine activity: resting ``tone`` with a bell-shaped contraction (sin^2) of ``seconds``
    rising by ``peak`` every ``every`` seconds from ``first``."""
    samples = []
    for k in range(int(minutes * 60 * hz)):
        x = k / hz
        value = tone
        if every:
            phase = (x - first) % every
            if x >= first and phase < seconds:
                value += peak * math.sin(math.pi * phase / seconds) ** 2
        samples.append((T0 + x, value))
    return samples


def contraction_starts(minutes: float, *, every: float, first: float = 60) -> list[float]:
    starts, t = [], first
    while t < minutes * 60:
        starts.append(t)
        t += every
    return starts


def accelerations(minutes: float, *, every: float = 600, first: float = 300) -> list[Shape]:
    """Accelerations of 25 bpm for 40 s every ``every`` seconds: a reactive trace."""
    return [
        Shape(t, 40, 25, ramp_in=8, ramp_out=8)
        for t in range(int(first), int(minutes * 60) - 60, int(every))
    ]
