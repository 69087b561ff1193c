"""A realistic cardiotocogram for the simulator: maternal heart rate, fetal heart rate and
uterine activity of a woman in labour.

A labour ward mostly reads normal and suspicious; pathological traces are the exception. So:

- Uterine activity: a resting tone with contractions every 2-4 minutes (onset to onset;
  45-80 s, 30-70 toco units above the tone).
- Fetal heart rate: a baseline of 110-160 bpm, mostly 120-150 (normal around 135, SD 8),
  with 6-18 bpm of bandwidth (normal variability, 5-25), accelerations (+15-25 bpm for 15-40
  s, a few per 20 minutes), and with about a third of the contractions a deceleration without
  hypoxic features: mostly early (shallow, nadir at the acme) or variable (a rapid V that
  recovers within a minute), rarely a late one.
- Pathological episodes, rare (per bed, on average one every few hours): a prolonged
  deceleration (3-7 minutes at 80-95 bpm; the simulator's fetal "bradycardia episodes"), a
  run of late decelerations with every contraction (20-40 minutes), or reduced variability
  (under 5 bpm for 40-70 minutes).
- Signal loss: short dropouts (4-20 s, about 6 % of the trace) and now and then a longer one
  (70-120 s, once an hour), about 9 % in all, as Doppler loses; during a dropout no fetal
  reading is sent.
- Maternal capture: now and then (per bed about once in 90 minutes), for 1.5-3 minutes, the
  fetal channel records the mother's heart rate.

``CtgTrace.next(t)`` gives the readings of second ``t`` (``None`` for a fetal heart rate that
is lost). Deterministic for a seeded ``random.Random``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CtgConfig:
    """How often each CTG feature appears (seconds are mean gaps between them)."""

    contraction_gap: tuple[float, float] = (70.0, 150.0)  # end of one to onset of the next
    contraction_seconds: tuple[float, float] = (45.0, 80.0)
    contraction_peak: tuple[float, float] = (30.0, 70.0)
    acceleration_every: float = 400.0
    deceleration_share: float = 0.3  # of contractions that bring a deceleration
    # early : late : variable, outside a late-deceleration episode
    deceleration_weights: tuple[float, float, float] = (5.0, 1.0, 5.0)
    late_episode_every: float = 6 * 3600.0  # late decelerations with every contraction
    late_episode_seconds: tuple[float, float] = (1200.0, 2400.0)
    reduced_episode_every: float = 8 * 3600.0  # reduced variability
    reduced_episode_seconds: tuple[float, float] = (2400.0, 4200.0)
    dropout_every: float = 180.0  # short dropouts, 4-20 s
    long_loss_every: float = 3600.0  # a 70-120 s loss now and then
    coincidence_every: float = 5400.0  # the fetal channel records the mother
    enabled: bool = True


@dataclass
class _Event:
    start: float
    end: float
    kind: str
    size: float = 0.0
    nadir_at: float = 0.0


@dataclass
class CtgCounts:
    contractions: int = 0
    accelerations: int = 0
    decelerations: dict[str, int] = field(default_factory=dict)
    losses: int = 0
    coincidences: int = 0
    episodes: dict[str, int] = field(default_factory=dict)  # pathological: late, reduced


class CtgTrace:
    """The three channels of one labouring patient's monitor."""

    def __init__(
        self,
        rng: random.Random,
        *,
        maternal: Callable[[float], int],
        prolonged_every: float = 0.0,
        prolonged_seconds: float = 200.0,
        config: CtgConfig | None = None,
    ) -> None:
        """``maternal(t)`` is the mother's heart rate; a prolonged deceleration of
        ``prolonged_seconds`` to twice that comes on average every ``prolonged_every`` seconds
        (0: never)."""
        self.rng = rng
        self.config = config or CtgConfig()
        self.maternal = maternal
        self.prolonged_seconds = prolonged_seconds
        self.prolonged_every = prolonged_every
        self.baseline = min(max(rng.gauss(135, 8), 112), 158)
        self.amplitude = rng.uniform(3, 8)  # bandwidth about twice this
        self.tone = rng.uniform(8, 15)
        self.phase = rng.uniform(0, 2 * math.pi)
        self.drift = 0.0
        self.counts = CtgCounts()
        c = self.config
        self.contraction: _Event | None = None
        self.next_contraction = rng.uniform(20, c.contraction_gap[1])
        self.fetal_events: list[_Event] = []
        self.next_acceleration = self._gap(0, c.acceleration_every)
        self.next_dropout = self._gap(0, c.dropout_every)
        self.next_long_loss = self._gap(0, c.long_loss_every)
        self.next_coincidence = self._gap(0, c.coincidence_every)
        self.next_prolonged = self._gap(0, prolonged_every)
        self.next_late_episode = self._gap(0, c.late_episode_every)
        self.next_reduced_episode = self._gap(0, c.reduced_episode_every)
        self.late_until = -1.0
        self.reduced_until = -1.0
        self.loss_until = -1.0
        self.coincidence_until = -1.0

    def _gap(self, now: float, mean: float) -> float:
        if not self.config.enabled or mean <= 0:
            return math.inf
        return now + self.rng.expovariate(1.0 / mean)

    # --- Uterine activity ---

    def _uterine(self, t: float) -> float:
        c = self.config
        if self.contraction is None and t >= self.next_contraction and c.enabled:
            seconds = self.rng.uniform(*c.contraction_seconds)
            self.contraction = _Event(
                t, t + seconds, "contraction", size=self.rng.uniform(*c.contraction_peak)
            )
            self.counts.contractions += 1
            self._maybe_deceleration(self.contraction)
        value = self.tone + self.rng.gauss(0, 1.0)
        if self.contraction is not None:
            if t >= self.contraction.end:
                self.next_contraction = t + self.rng.uniform(*c.contraction_gap)
                self.contraction = None
            else:
                x = (t - self.contraction.start) / (self.contraction.end - self.contraction.start)
                value += self.contraction.size * math.sin(math.pi * x) ** 2
        return min(max(value, 0.0), 100.0)

    def _maybe_deceleration(self, contraction: _Event) -> None:
        c = self.config
        t = contraction.start
        if t >= self.next_late_episode:
            self.late_until = t + self.rng.uniform(*c.late_episode_seconds)
            self.counts.episodes["late"] = self.counts.episodes.get("late", 0) + 1
            self.next_late_episode = self._gap(self.late_until, c.late_episode_every)
        late_episode = t < self.late_until
        if not late_episode and self.rng.random() >= c.deceleration_share:
            return
        seconds = contraction.end - contraction.start
        acme = contraction.start + seconds / 2
        kinds = ["early", "late", "variable"]
        kind = "late" if late_episode else self.rng.choices(kinds, c.deceleration_weights)[0]
        if kind == "early":  # mirrors the contraction: nadir at the acme
            event = _Event(acme - 40, acme + 40, kind, self.rng.uniform(16, 25), acme)
        elif kind == "late":  # starts well into the contraction, nadir after the acme
            start = contraction.start + 30
            nadir = acme + 25
            event = _Event(start, nadir + 45, kind, self.rng.uniform(18, 30), nadir)
        else:  # a rapid V at any point of the contraction, back within a minute
            start = self.rng.uniform(contraction.start, acme)
            event = _Event(start, start + self.rng.uniform(25, 50), kind, 0.0, start + 10)
            event.size = self.rng.uniform(20, 45)
        self.fetal_events.append(event)
        self.counts.decelerations[kind] = self.counts.decelerations.get(kind, 0) + 1

    # --- Fetal heart rate ---

    def _excursion(self, event: _Event, t: float) -> float:
        if event.kind == "acceleration":
            x = (t - event.start) / (event.end - event.start)
            return event.size * math.sin(math.pi * x)
        if event.kind == "prolonged":
            ramp = min(1.0, (t - event.start) / 20, (event.end - t) / 30)
            return -event.size * ramp
        # Decelerations: down to the nadir, back up to the end (linear ramps).
        if t <= event.nadir_at:
            share = (t - event.start) / max(event.nadir_at - event.start, 1.0)
        else:
            share = (event.end - t) / max(event.end - event.nadir_at, 1.0)
        return -event.size * max(0.0, min(1.0, share))

    def _fetal(self, t: float, maternal: float) -> float | None:
        c = self.config
        if t >= self.next_acceleration:
            seconds = self.rng.uniform(15, 40)
            self.fetal_events.append(
                _Event(t, t + seconds, "acceleration", self.rng.uniform(17, 25))
            )
            self.counts.accelerations += 1
            self.next_acceleration = self._gap(t + seconds, c.acceleration_every)
        if t >= self.next_reduced_episode:
            self.reduced_until = t + self.rng.uniform(*c.reduced_episode_seconds)
            self.counts.episodes["reduced"] = self.counts.episodes.get("reduced", 0) + 1
            self.next_reduced_episode = self._gap(self.reduced_until, c.reduced_episode_every)
        if t >= self.next_prolonged:
            seconds = self.rng.uniform(self.prolonged_seconds, 2 * self.prolonged_seconds)
            level = self.rng.uniform(80, 95)
            self.fetal_events.append(_Event(t, t + seconds, "prolonged", self.baseline - level))
            self.counts.decelerations["prolonged"] = (
                self.counts.decelerations.get("prolonged", 0) + 1
            )
            self.next_prolonged = self._gap(t + seconds, self.prolonged_every)
        self.fetal_events = [e for e in self.fetal_events if e.end > t]

        # Technical problems first: what the channel shows, not what the fetus does.
        if t >= self.next_coincidence:
            self.coincidence_until = t + self.rng.uniform(90, 180)
            self.counts.coincidences += 1
            self.next_coincidence = self._gap(self.coincidence_until, c.coincidence_every)
        if t < self.coincidence_until:
            return maternal + self.rng.gauss(0, 1.0)
        if t >= self.next_long_loss:
            self.loss_until = t + self.rng.uniform(70, 120)
            self.counts.losses += 1
            self.next_long_loss = self._gap(self.loss_until, c.long_loss_every)
        elif t >= self.next_dropout:
            self.loss_until = t + self.rng.uniform(4, 20)
            self.counts.losses += 1
            self.next_dropout = self._gap(self.loss_until, c.dropout_every)
        if t < self.loss_until:
            return None

        self.drift = 0.998 * self.drift + self.rng.gauss(0, 0.15)
        reduced = t < self.reduced_until
        amplitude = 0.8 if reduced else self.amplitude  # a bandwidth under 5 bpm
        wave = amplitude * (
            0.7 * math.sin(2 * math.pi * t / 25 + self.phase)
            + 0.3 * math.sin(2 * math.pi * t / 7 + 2 * self.phase)
        )
        value = self.baseline + self.drift + wave + self.rng.gauss(0, 0.3 if reduced else 1.0)
        events = [e for e in self.fetal_events if e.start <= t < e.end]
        if reduced:  # no accelerations either
            events = [e for e in events if e.kind != "acceleration"]
        value += sum(self._excursion(e, t) for e in events)
        return min(max(value, 50.0), 240.0)

    def next(self, t: float) -> dict[str, int | None]:
        """The readings at ``t`` seconds (monotonically increasing calls)."""
        maternal = self.maternal(t)
        fetal = self._fetal(t, maternal)
        return {
            "heart_rate": maternal,
            "fetal_heart_rate": None if fetal is None else round(fetal),
            "uterine_activity": round(self._uterine(t)),
        }
