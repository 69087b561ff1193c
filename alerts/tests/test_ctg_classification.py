"""The latest CTG classification, kept by the alarm evaluator for the ward tiles: stored and
published only when what it shows changes. Controlled time as in test_ctg_alarms.py (readings
with explicit ``recorded_at`` through the ingest service, evaluated with ``alarms_drain``)."""

from __future__ import annotations

import math
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from alerts import services
from alerts.models import CtgClassification
from alerts.services import publishing
from alerts.tests.test_ctg_alarms import T0, Monitor
from testing.factories import StoredReadingFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_alarm_state")]


def insufficient_signal_ctg(row: CtgClassification) -> dict[str, Any]:
    """What the dashboards are told of ``row``, a patient's first classification (too little
    signal yet), in the live event and in the frame alike."""
    return {
        "classification": "insufficient_signal",
        "baseline_bpm": None,
        "reasons": row.reasons,
        "since": row.since.isoformat(),
        "at": row.at.isoformat(),
    }


@pytest.fixture
def published(monkeypatch):
    """The group messages the evaluator's classification writes publish once committed."""
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(publishing, "live_publish", lambda events: sent.extend(events))
    return sent


@pytest.fixture
def monitor(alarms_drain, django_capture_on_commit_callbacks):
    monitor = Monitor(alarms_drain)
    feed = monitor.feed

    def feed_committed(*args, **kwargs):
        # The test's transaction never commits: run what would run after each commit.
        with django_capture_on_commit_callbacks(execute=True):
            feed(*args, **kwargs)

    monitor.feed = feed_committed  # type: ignore[method-assign]
    return monitor


def ctg_frames(sent: list[tuple[str, dict]]) -> list[dict]:
    return [event for _, event in sent if event["type"] == "ctg.classification"]


def shown(frame: dict) -> tuple:
    ctg = frame["ctg"]
    return ctg["classification"], ctg["baseline_bpm"], ctg["reasons"]


def test_the_classification_is_stored_and_published_only_when_it_changes(monitor, published):
    ward_id = monitor.patient.ward_id
    monitor.feed(0, 30)  # monitored for 30 s: too short to classify, not "98 % missing"
    row = CtgClassification.objects.get(patient=monitor.patient)
    assert row.classification == "insufficient_signal"
    assert row.reasons == ["Monitored for 30 s: too short to classify yet (needs 10 more minutes)."]
    [(group, first)] = published
    assert group == f"ward.{ward_id}"
    assert first == {
        "type": "ctg.classification",
        "ward": ward_id,
        "patient": monitor.patient.id,
        "ctg": insufficient_signal_ctg(row),
    }
    assert row.since == row.at == T0 + timedelta(seconds=29)  # the latest reading's time

    monitor.feed(30, 1500)
    row.refresh_from_db()
    assert row.classification == "normal"
    assert row.baseline_bpm is not None and 135 <= row.baseline_bpm <= 145
    frames = ctg_frames(published)
    # A frame only for a change (the minutes still needed count down, then the
    # classification turns normal), never the same content twice.
    assert all(shown(a) != shown(b) for a, b in pairwise(frames))
    assert [f["ctg"]["classification"] for f in frames][-1] == "normal"
    assert frames[-1]["ctg"]["since"] == row.since.isoformat()
    normal_since = row.since

    count = len(frames)
    monitor.feed(1500, 1800)  # the same trace: nothing the tile shows changes
    assert len(ctg_frames(published)) == count
    row.refresh_from_db()
    assert row.since == normal_since

    # The baseline falls below 100: pathological, published, with its reasons.
    monitor.feed(1800, 3600, fhr=lambda t: 95 + 4 * math.sin(2 * math.pi * t / 20), chunk=60)
    row.refresh_from_db()
    assert row.classification == "pathological"
    assert "Baseline 95 bpm (below 100)." in row.reasons
    assert row.since > normal_since and row.at >= row.since
    assert ctg_frames(published)[-1]["ctg"]["classification"] == "pathological"


def test_an_unchanged_classification_costs_no_write(
    monitor, published, django_assert_num_queries, settings
):
    from alerts.ctg_alarms import ctg_alarms_evaluate
    from monitoring.readings import StoredReading

    monitor.feed(0, 60)
    monitor.feed(60, 1500)  # normal, and stays so
    sent = len(published)

    def stored(second: float) -> StoredReading:
        at = T0 + timedelta(seconds=second)
        return StoredReadingFactory(
            id=1,
            patient=monitor.patient,
            metric="uterine_activity",
            value=10,
            recorded_at=at,
            received_at=T0,
        )

    settings.ALARM_CTG_EVALUATE_SECONDS = 5
    # The window, the patient's settings, the classification: no write.
    with django_assert_num_queries(3):
        ctg_alarms_evaluate(stored=[stored(1505)])
    assert len(published) == sent


def test_the_admin_lists_classifications_read_only(obstetric_patient, client, django_user_model):
    from django.utils import timezone

    CtgClassification.objects.create(
        patient=obstetric_patient,
        classification="suspicious",
        baseline_bpm=165,
        reasons=["Baseline 165 bpm (above 160)."],
        since=timezone.now(),
        at=timezone.now(),
    )
    client.force_login(django_user_model.objects.create_superuser("root@example.org", "Pw-1-x"))
    changelist = "/admin/alerts/ctgclassification/"
    response = client.get(changelist, {"classification__exact": "suspicious"})
    assert response.status_code == 200 and obstetric_patient.name.encode() in response.content
    assert client.get(f"{changelist}add/").status_code == 403
    row = client.post(f"{changelist}{obstetric_patient.pk}/change/", {"classification": "normal"})
    assert row.status_code == 403
    assert CtgClassification.objects.get().classification == "suspicious"


def test_a_change_of_wording_alone_is_written_at_most_every_refresh_interval(
    obstetric_patient, published, settings
):
    settings.CTG_REASONS_REFRESH_SECONDS = 60
    lost = "The fetal heart rate is missing for {} % of the window."

    def record(current, second, classification="insufficient_signal", reason=None):
        reason = lost.format(50) if reason is None else reason
        return services.ctg_classification_record(
            patient_id=obstetric_patient.id,
            ward_id=obstetric_patient.ward_id,
            current=current,
            classification=classification,
            baseline_bpm=None,
            reasons=[reason],
            at=T0 + timedelta(seconds=second),
        )

    row = record(None, 0)
    assert row is not None
    assert record(row, 1, reason=lost.format(50)) is None  # the same: nothing to write
    # The share moves by a fraction 5 s later: not rewritten, not sent again.
    assert record(row, 5, reason=lost.format(49.5)) is None
    # A minute after the last write the new wording is stored.
    assert record(row, 61, reason=lost.format(40)) is row
    assert CtgClassification.objects.get(patient=obstetric_patient).reasons == [lost.format(40)]
    # Another reason for the same class is stored at once: the tile shows the latest cause.
    short = "Monitored for 6 minutes: too short to classify yet (needs 4 more minutes)."
    assert record(row, 61.5, reason=short) is row
    assert CtgClassification.objects.get(patient=obstetric_patient).reasons == [short]
    # A new classification is stored at once, however soon.
    assert record(row, 62, classification="normal", reason="") is row
    assert CtgClassification.objects.get(patient=obstetric_patient).classification == "normal"


def test_a_batch_the_database_does_not_show_yet_is_classified_from_its_readings(
    obstetric_patient, published
):
    """Readings reach the stream in the transaction that stores them, so the evaluator may
    read a batch before it is committed: 6 minutes of trace in one batch, none of it in the
    database yet, read as a recording too short to classify (not as a window with no fetal
    heart rate at all, which no later reading would correct if the monitor stops)."""
    from alerts.ctg_alarms import ctg_alarms_evaluate
    from monitoring.readings import StoredReading

    def stored(second: int, metric: str, value: float) -> StoredReading:
        at = T0 + timedelta(seconds=second)
        return StoredReading(
            id=2 * second + (metric == "uterine_activity") + 1,
            patient_id=obstetric_patient.id,
            device_id=None,
            ward_id=obstetric_patient.ward_id,
            metric=metric,
            value=round(value),
            recorded_at=at,
            received_at=at,
            seq=None,
        )

    batch = [
        reading
        for second in range(360)
        for reading in (
            stored(second, "fetal_heart_rate", 140 + 5 * math.sin(second / 3)),
            stored(second, "uterine_activity", 10),
        )
    ]
    ctg_alarms_evaluate(stored=batch)
    row = CtgClassification.objects.get(patient=obstetric_patient)
    assert row.classification == "insufficient_signal"
    assert row.reasons == [
        "Monitored for 6 minutes: too short to classify yet (needs 4 more minutes)."
    ]
    assert row.at == T0 + timedelta(seconds=359)
