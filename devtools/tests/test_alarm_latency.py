"""The benchmark's alarm latency bookkeeping, with controlled timestamps: which reading
completes an episode's hold time, and how alert frames are matched and timed."""

from __future__ import annotations

import math

from alerts.ctg_rules import CtgLimits, ctg_conditions
from ctg.analysis import per_second
from ctg.window import CTG_WINDOW, ctg_read
from devtools.bench.alarm_latency import (
    CTG_DECELERATION_BPM,
    CTG_HISTORY_SECONDS,
    CTG_KIND,
    CTG_LEAD_SECONDS,
    AlarmEpisodes,
    Episode,
    hold_completed,
    normal_bpm,
)

WARD, OTHER_WARD, PATIENT = 7, 8, 101
ONSET_RECORDED = 1_800_000_000.0  # epoch seconds
ONSET_SENT = 50.0  # this process's clock


def _episode_at_4_hz(episodes: AlarmEpisodes, *, hold: float, readings: int) -> Episode:
    """An episode whose readings are recorded and sent every 0.25 s from the onset."""
    episode = episodes.add(
        Episode(device_index=0, patient_id=PATIENT, kind="bradycardia", hold=hold), ward_id=WARD
    )
    for i in range(readings):
        episode.reading_sent(
            seq=100 + i, recorded_at=ONSET_RECORDED + i * 0.25, sent=ONSET_SENT + i * 0.25
        )
    return episode


def _alert(**fields: object) -> dict[str, object]:
    return {"id": 1, "patient": PATIENT, "kind": "bradycardia", "state": "active", **fields}


def test_the_hold_is_completed_by_the_first_reading_recorded_hold_seconds_after_the_onset():
    assert not hold_completed(onset=100.0, at=102.999, hold=3)
    assert hold_completed(onset=100.0, at=103.0, hold=3)
    assert hold_completed(onset=100.0, at=100.0, hold=0)


def test_latency_runs_from_the_completing_reading_to_the_last_watching_dashboard():
    episodes = AlarmEpisodes(watchers={WARD: [0, 1], OTHER_WARD: [2]}, timeout=10)
    episode = _episode_at_4_hz(episodes, hold=3, readings=20)
    # The 13th reading (seq 112) is recorded 3.0 s after the onset and sent at 53.0.
    assert (episode.completing_seq, episode.completing_sent) == (112, ONSET_SENT + 3.0)
    assert episode.onset_sent == ONSET_SENT
    episode.completing_acked = 53.05

    episodes.alert_frame(dashboard=0, alert=_alert(), received=53.2)
    assert episodes.latency(episode) is None  # dashboard 1 watches the ward too
    episodes.alert_frame(dashboard=1, alert=_alert(), received=53.3)
    # The escalation or resolve of the same alert later does not move its arrival.
    episodes.alert_frame(dashboard=1, alert=_alert(state="resolved"), received=60.0)

    latency = episodes.latency(episode)
    assert latency is not None and abs(latency - 0.3) < 1e-9  # not 3.3 s: from the onset
    summary = episodes.result()["vital"]
    assert (summary["episodes"], summary["matched"], summary["missed"]) == (1, 1, 0)
    assert summary["latency_ms"] == {"p50": 300.0, "p95": 300.0, "p99": 300.0, "max": 300.0}
    assert summary["after_ack_ms"]["max"] == 250.0  # the part after the reading's ack
    assert episodes.result()["ctg"]["episodes"] == 0


def test_frames_of_other_alerts_do_not_match_an_episode():
    episodes = AlarmEpisodes(watchers={WARD: [0]}, timeout=10)
    episode = _episode_at_4_hz(episodes, hold=3, readings=8)  # 1.75 s in: not completed
    episodes.alert_frame(dashboard=0, alert=_alert(), received=52.0)  # before the hold ended
    for i in range(8, 14):
        episode.reading_sent(
            seq=100 + i, recorded_at=ONSET_RECORDED + i * 0.25, sent=ONSET_SENT + i * 0.25
        )
    episodes.alert_frame(dashboard=0, alert=_alert(id=2, kind="tachycardia"), received=53.1)
    episodes.alert_frame(dashboard=0, alert=_alert(id=3, patient=999), received=53.1)
    episodes.alert_frame(dashboard=0, alert=_alert(id=4, state="resolved"), received=53.1)

    assert episode.alert_id is None
    assert episodes.unmatched_frames == 3  # the early one, the other kind, the other patient
    episodes.alert_frame(dashboard=0, alert=_alert(id=5), received=53.4)
    assert episode.alert_id == 5
    latency = episodes.latency(episode)
    assert latency is not None and abs(latency - 0.4) < 1e-9


def test_an_alert_missing_on_a_dashboard_or_later_than_the_timeout_is_missed():
    episodes = AlarmEpisodes(watchers={WARD: [0, 1]}, timeout=2)
    episode = _episode_at_4_hz(episodes, hold=1, readings=8)  # completed at 51.0
    episodes.alert_frame(dashboard=0, alert=_alert(), received=51.5)

    assert not episodes.settled(52.9)  # dashboard 1 may still get it
    assert episodes.settled(53.1)
    assert episodes.latency(episode) is None
    episodes.alert_frame(dashboard=1, alert=_alert(), received=53.5)  # 2.5 s: too late
    summary = episodes.result()["vital"]
    assert (summary["episodes"], summary["matched"], summary["missed"]) == (1, 0, 1)
    assert summary["latency_ms"]["p99"] is None


def _prolonged_deceleration(samples: list[tuple[float, float]], *, latest: float) -> bool:
    """The CTG alarm's condition as the evaluator reads it when ``latest`` is the patient's
    latest reading (alerts.ctg_alarms: the window ends after the latest reading's second)."""
    end = math.floor(latest) + 1
    start = end - CTG_WINDOW.span_seconds
    fhr = per_second([(t, v) for t, v in samples if t <= latest], start=start, end=end)
    none: list[float | None] = [None] * len(fhr)
    reading = ctg_read(fhr=fhr, ua=none, mhr=none, start=start, end=end)
    conditions = ctg_conditions(
        result=reading.result,
        fhr=reading.fhr,
        mhr=none[reading.offset :],
        monitored_since=reading.monitored_since or reading.result.end,
        limits=CtgLimits(prolonged_deceleration_seconds=60),
        maternal=reading.maternal,
    )
    return conditions[CTG_KIND].active


def test_the_ctg_episodes_completing_reading_is_where_the_analysis_finds_the_deceleration_prolonged():
    # The bench's CTG episode: 12 minutes of stored history ending at ``now`` (normal trace,
    # then the deceleration from a whole second), then streamed readings after a short gap.
    now, index, hold = 1_800_000_000.37, 3, 60
    onset = math.floor(now) - (hold - CTG_LEAD_SECONDS)
    samples = []
    for i in range(CTG_HISTORY_SECONDS * 4):
        at = now - CTG_HISTORY_SECONDS + i * 0.25
        bpm = CTG_DECELERATION_BPM if at >= onset else normal_bpm("fetal_heart_rate", i, index)
        samples.append((at, float(bpm)))
    episode = Episode(
        device_index=index, patient_id=PATIENT, kind=CTG_KIND, hold=hold, family="ctg"
    )
    episode.onset_at = onset
    streamed = [now + 1.3 + k * 0.25 for k in range(80)]
    for seq, at in enumerate(streamed, start=1):
        samples.append((at, float(CTG_DECELERATION_BPM)))
        episode.reading_sent(seq=seq, recorded_at=at, sent=at)

    assert episode.completing_at is not None and episode.completing_seq is not None
    before = streamed[episode.completing_seq - 2]
    assert not _prolonged_deceleration(samples, latest=before)
    assert _prolonged_deceleration(samples, latest=episode.completing_at)
