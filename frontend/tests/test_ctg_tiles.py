"""The latest CTG classification on the ward tiles in the system Chromium, against the
scripted backend (mock_backend.py): shown from the snapshot, colour-coded and worded, with the
baseline and the reasons as the tooltip, updated by a live ``ctg`` frame, and taken from the
snapshot again after a reconnect. The server side (evaluator, snapshot, scoping) is tested in
alerts/tests/test_ctg_classification*.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from frontend.tests.mock_backend import MockBackend, iso, make_patients
from frontend.tests.test_dashboard_client import sign_in_and_open_ward

pytestmark = [pytest.mark.browser]

GREEN = "rgb(52, 199, 89)"
YELLOW = "rgb(255, 214, 10)"
RED = "rgb(255, 59, 48)"
# The red of a filled band under white text (--high-band): dark enough for 4.5:1.
BAND_RED = "rgb(200, 16, 46)"
MOTHER, NEWCOMER, ADULT = 3, 6, 1  # make_patients: every third patient is obstetric


def ctg(classification: str, baseline: int | None, reasons: list[str], at: datetime) -> dict:
    return {
        "classification": classification,
        "baseline_bpm": baseline,
        "reasons": reasons,
        "since": iso(at),
        "at": iso(at),
    }


@pytest.fixture
def ward_page(page_server, new_page):
    page = new_page()
    patients = make_patients(6)
    now = datetime.now(UTC)
    for p in patients:
        p["ctg"] = None
    patients[MOTHER - 1]["ctg"] = ctg("normal", 140, [], now - timedelta(minutes=5))
    backend = MockBackend(page, patients=patients)
    sign_in_and_open_ward(page, page_server, backend)
    return page, backend


def badge(page, patient_id: int):
    return page.locator(f".tile[data-patient='{patient_id}'] .ctg-badge")


def colours(locator) -> tuple[str, str]:
    """The classification word's colour and the badge's edge colour."""
    return locator.evaluate(
        """e => [getComputedStyle(e.querySelector('.ctg-value')).color,
                 getComputedStyle(e).borderLeftColor]"""
    )


def wait_for_ctg(page, patient_id: int, classification: str) -> None:
    page.wait_for_selector(
        f".tile[data-patient='{patient_id}'] .ctg-badge[data-ctg='{classification}']"
    )


def test_the_tile_shows_the_snapshot_classification_and_follows_live_frames(ward_page):
    page, backend = ward_page
    wait_for_ctg(page, MOTHER, "normal")
    mother = badge(page, MOTHER)
    assert mother.is_visible()
    assert mother.inner_text().split() == ["CTG", "NORMAL", "BL", "140"]
    assert tuple(colours(mother)) == (GREEN, GREEN)
    assert "CTG normal (FIGO 2015)" in mother.get_attribute("title")
    # An obstetric patient not classified yet says so; an adult's tile has no CTG.
    assert badge(page, NEWCOMER).get_attribute("data-ctg") == "none"
    assert "--" in badge(page, NEWCOMER).inner_text()
    assert badge(page, ADULT).is_hidden()

    now = datetime.now(UTC)
    reasons = ["Baseline 95 bpm (below 100).", "Late decelerations in 60 % of contractions."]
    backend.push(
        {
            "type": "ctg",
            "patient": MOTHER,
            "ward": backend.ward_id,
            "ctg": ctg("pathological", 95, reasons, now),
        }
    )
    wait_for_ctg(page, MOTHER, "pathological")
    # The word, the baseline and the first reason on the tile; all reasons in the tooltip.
    assert mother.inner_text().split()[:4] == ["CTG", "PATHOLOGICAL", "BL", "95"]
    assert reasons[0] in mother.inner_text()
    assert mother.evaluate("e => getComputedStyle(e).backgroundColor") == BAND_RED
    title = mother.get_attribute("title")
    assert title.splitlines()[1:] == ["Baseline 95 bpm", *(f"• {r}" for r in reasons)]
    assert "Baseline 95 bpm (below 100)." in mother.get_attribute("aria-label")

    # A frame computed before the one shown (late on the wire) does not replace it.
    backend.push(
        {
            "type": "ctg",
            "patient": MOTHER,
            "ward": backend.ward_id,
            "ctg": ctg("normal", 140, [], now - timedelta(seconds=10)),
        }
    )
    backend.push(
        {
            "type": "ctg",
            "patient": NEWCOMER,
            "ward": backend.ward_id,
            "ctg": ctg("suspicious", 165, ["Baseline 165 bpm (above 160)."], now),
        }
    )
    wait_for_ctg(page, NEWCOMER, "suspicious")
    assert tuple(colours(badge(page, NEWCOMER))) == (YELLOW, YELLOW)
    assert mother.get_attribute("data-ctg") == "pathological"
    assert page.console_errors == []


def test_a_reconnect_takes_the_classification_from_the_new_snapshot(ward_page):
    page, backend = ward_page
    wait_for_ctg(page, MOTHER, "normal")
    # While the dashboard was away the classification changed; no frame told it.
    backend.patients[MOTHER - 1] = {
        **backend.patients[MOTHER - 1],
        "ctg": ctg(
            "insufficient_signal", None, ["The fetal heart rate is missing."], datetime.now(UTC)
        ),
    }
    backend.socket.close(code=1011, reason="server restart")
    page.wait_for_function("() => document.getElementById('main').dataset.snapshots === '2'")
    wait_for_ctg(page, MOTHER, "insufficient_signal")
    assert badge(page, MOTHER).inner_text().split()[:2] == ["CTG", "INSUFFICIENT"]
    assert "The fetal heart rate is missing." in badge(page, MOTHER).get_attribute("title")
