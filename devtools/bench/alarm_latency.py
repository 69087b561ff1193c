"""Alarm latency: how long after the reading that completes an alarm's hold time the ``alert``
frame reaches the dashboards watching that ward.

The streaming benchmark (stream.py) injects alarm episodes with a known onset into some
devices' readings: the rate drops into the high bradycardia band (adult heart rate, or fetal
heart rate) and stays there past the hold time, then comes back to normal for longer than the
clear time, so the alert resolves and the next episode raises a new one. The hold time is the
patient's own, set through the product's per-patient alarm limits before streaming
(``episode_limits_set``).

The evaluator's rule (``alerts.rules.band_step``) measures the hold on the readings' own
``recorded_at``: the band's condition starts at the first reading in the band (the onset) and
an alert is raised by the first reading whose ``recorded_at`` is at least onset + hold. That
reading is the *completing reading*; its send time (this process's clock) is where the latency
starts, and the latest arrival of the new alert's first frame among the dashboards watching
the ward is where it ends. An episode whose alert has not reached every such dashboard within
the timeout (or before the run ends) is *missed*.

Everything here is pure bookkeeping with the times passed in, so it is tested with controlled
timestamps (devtools/tests/test_alarm_latency.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devtools.bench.stats import percentiles_ms

# The band an episode drops into: the high-priority bradycardia band of each metric's defaults
# (adult NEWS2 <= 40, FIGO fetal < 100), with the alert kind its raise carries.
EPISODE_BPM = {"heart_rate": 35, "fetal_heart_rate": 90}
EPISODE_KIND = {"heart_rate": "bradycardia", "fetal_heart_rate": "fetal_bradycardia"}
# Readings in the band after the completing one, and normal time after an episode beyond the
# clear time (ALARM_CLEAR_SECONDS), so the alert resolves before the next onset.
EPISODE_TAIL_SECONDS = 2.0
EPISODE_GAP_SECONDS = 3.0

# CTG episodes: a prolonged deceleration. The bench's fetal heart rate is about 140 bpm; the
# deceleration is 22 bpm below it (more than 15: a deceleration; a step of at most 25 bpm a
# second: not an artefact). The patient's ``prolonged_deceleration_seconds`` is the hold;
# the deceleration begins on a whole second in the patient's stored history, so that it has
# lasted the hold less CTG_LEAD_SECONDS when streaming starts (history before it: normal
# trace, for the analysis's baseline), and goes on in the stream until CTG_TAIL_SECONDS after
# the completing reading (beyond the evaluation cadence, ALARM_CTG_EVALUATE_SECONDS).
CTG_KIND = "prolonged_deceleration"
CTG_DECELERATION_BPM = 118
CTG_HISTORY_SECONDS = 720
CTG_LEAD_SECONDS = 8.0
CTG_TAIL_SECONDS = 7.0


def normal_bpm(metric: str, n: int, index: int) -> int:
    """The bench's normal trace: reading ``n`` of device ``index``, 80 +-5 bpm for the heart
    rate, 140 +-5 for the fetal heart rate (deterministic, so a resent reading is the same)."""
    base = 80 if metric == "heart_rate" else 140
    return base + (n * 7 + index) % 11 - 5


def hold_completed(*, onset: float, at: float, hold: float) -> bool:
    """Whether a reading recorded at ``at`` (epoch seconds) completes a hold that began with a
    reading recorded at ``onset``: the evaluator's test in ``alerts.rules.band_step``."""
    return at - onset >= hold


@dataclass
class Episode:
    """One injected episode of one device: its onset, its completing reading and the arrivals
    of its alert at the dashboards watching the ward (dashboard index -> receipt time)."""

    device_index: int
    patient_id: int
    kind: str
    hold: float
    family: str = "vital"
    onset_at: float | None = None  # recorded_at (epoch s) of the first reading in the band
    onset_sent: float | None = None  # when that reading was sent (this process's clock)
    completing_seq: int | None = None
    completing_at: float | None = None  # recorded_at of the completing reading
    completing_sent: float | None = None
    completing_acked: float | None = None  # when its ack came back
    alert_id: int | None = None
    arrivals: dict[int, float] = field(default_factory=dict)

    def reading_sent(self, *, seq: int, recorded_at: float, sent: float) -> None:
        """A reading of the episode (in the band) was sent: the first is the onset; the first
        that completes the hold is the completing reading."""
        if self.onset_at is None:
            self.onset_at, self.onset_sent = recorded_at, sent
        if self.completing_seq is None and hold_completed(
            onset=self.onset_at, at=recorded_at, hold=self.hold
        ):
            self.completing_seq, self.completing_at, self.completing_sent = (
                seq,
                recorded_at,
                sent,
            )

    @property
    def completed(self) -> bool:
        return self.completing_sent is not None


class AlarmEpisodes:
    """The episodes of a run and the matching of ``alert`` frames to them.

    ``watchers`` maps a ward to the indexes of the dashboards watching it: an episode's alert
    is expected on each of them. A frame matches an episode of its patient and kind that is
    completed and has no alert yet, or the episode already holding that alert id; a frame of
    a resolved alert, of another kind or of an alert already matched elsewhere is ignored.
    """

    def __init__(self, *, watchers: Mapping[int, Sequence[int]], timeout: float) -> None:
        self.watchers = {ward: list(dashes) for ward, dashes in watchers.items()}
        self.timeout = timeout
        self.episodes: list[Episode] = []
        self._ward_of: dict[int, int] = {}  # patient -> ward
        self._by_patient: dict[int, list[Episode]] = {}
        self._by_alert: dict[int, Episode] = {}
        self.unmatched_frames = 0

    def add(self, episode: Episode, *, ward_id: int) -> Episode:
        self.episodes.append(episode)
        self._ward_of[episode.patient_id] = ward_id
        self._by_patient.setdefault(episode.patient_id, []).append(episode)
        return episode

    def alert_frame(self, *, dashboard: int, alert: dict[str, Any], received: float) -> None:
        """An ``alert`` frame reached dashboard ``dashboard`` at ``received``."""
        alert_id, patient_id = alert.get("id"), alert.get("patient")
        if not isinstance(alert_id, int) or not isinstance(patient_id, int):
            return
        episode = self._by_alert.get(alert_id)
        if episode is None:
            if alert.get("state") != "active":
                return
            episode = next(
                (
                    e
                    for e in self._by_patient.get(patient_id, ())
                    if e.kind == alert.get("kind") and e.completed and e.alert_id is None
                ),
                None,
            )
            if episode is None:
                self.unmatched_frames += 1
                return
            episode.alert_id = alert_id
            self._by_alert[alert_id] = episode
        episode.arrivals.setdefault(dashboard, received)

    def latency(self, episode: Episode) -> float | None:
        """Seconds from the completing reading's send to the alert's arrival at the last of the
        ward's dashboards, or None if it did not reach them all within the timeout."""
        expected = self.watchers.get(self._ward_of[episode.patient_id], [])
        if episode.completing_sent is None or not expected:
            return None
        if any(d not in episode.arrivals for d in expected):
            return None
        latency = max(episode.arrivals[d] for d in expected) - episode.completing_sent
        return latency if latency <= self.timeout else None

    def settled(self, now: float) -> bool:
        """Every completed episode has its alert on every watching dashboard, or has timed out."""
        return all(
            self.latency(e) is not None
            or e.completing_sent is None
            or now - e.completing_sent > self.timeout
            for e in self.episodes
        )

    def result(self) -> dict[str, Any]:
        """Per family (``vital``, ``ctg``): episodes, matched, missed and the latency figures."""
        return {
            family: latency_summary(self, [e for e in self.episodes if e.family == family])
            for family in ("vital", "ctg")
        }


def latency_summary(episodes_set: AlarmEpisodes, episodes: Iterable[Episode]) -> dict[str, Any]:
    completed = [e for e in episodes if e.completed]
    latencies = [lat for e in completed if (lat := episodes_set.latency(e)) is not None]
    # The part after the completing reading's ack: what the evaluator and the fan-out take.
    after_ack = [
        e.completing_sent + lat - e.completing_acked
        for e in completed
        if (lat := episodes_set.latency(e)) is not None
        and e.completing_sent is not None
        and e.completing_acked is not None
    ]
    holds = sorted({e.hold for e in completed})
    return {
        "episodes": len(completed),
        "matched": len(latencies),
        "missed": len(completed) - len(latencies),
        "hold_seconds": holds,
        "latency_ms": percentiles_ms(latencies),
        "after_ack_ms": percentiles_ms(after_ack),
        "timeout_s": episodes_set.timeout,
    }
