"""The CTG strip of the patient view in the system Chromium, against the scripted backend plus
routes for the per-second history and the CTG analysis: drawn, live, scrolled back, paper
speed, gaps drawn as gaps, saved as a PNG."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from frontend.tests.mock_backend import MockBackend, iso, make_patients
from frontend.tests.test_dashboard_client import sign_in_and_open_ward

pytestmark = [pytest.mark.browser]

OBSTETRIC = 3  # make_patients: every third patient is obstetric
GAP = (300, 360)  # seconds before the window's end without a fetal heart rate


class CtgRoutes:
    """Answers GET /api/records/<id>/?bucket=1 with a synthetic CTG of the asked window and
    GET /api/patients/<id>/ctg/ with a fixed analysis of the evaluator's 30 minutes ending at
    `to` (the server's present without it); records the windows and analyses asked for."""

    def __init__(self, page) -> None:
        self.windows: list[tuple[datetime, datetime]] = []
        self.analyses: list[dict[str, list[str]]] = []
        page.route("**/api/records/*/?bucket=1*", self._history)
        page.route("**/api/patients/*/ctg/**", self._analysis)

    def _history(self, route) -> None:
        query = parse_qs(urlparse(route.request.url).query)
        start = datetime.fromisoformat(query["from"][0].replace("Z", "+00:00"))
        end = datetime.fromisoformat(query["to"][0].replace("Z", "+00:00"))
        self.windows.append((start, end))
        rows = []
        t = start.replace(microsecond=0) + timedelta(seconds=1)
        while t < end:
            before_end = (end - t).total_seconds()
            phase = t.timestamp()
            bucket = {"bucket_start": iso(t), "min": 0, "max": 0, "count": 4}
            if not GAP[0] <= before_end < GAP[1]:
                fhr = 140 + 5 * math.sin(phase / 3)
                rows.append({**bucket, "metric": "fetal_heart_rate", "mean": fhr})
            rows.append({**bucket, "metric": "heart_rate", "mean": 88 + 2 * math.sin(phase / 7)})
            ua = 10 + 50 * max(0.0, math.sin(2 * math.pi * phase / 180)) ** 2
            rows.append({**bucket, "metric": "uterine_activity", "mean": ua})
            t += timedelta(seconds=1)
        body = {"bucket": 1, "from": iso(start), "to": iso(end), "results": rows}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def _analysis(self, route) -> None:
        query = parse_qs(urlparse(route.request.url).query)
        self.analyses.append(query)
        end = (
            datetime.fromisoformat(query["to"][0].replace("Z", "+00:00"))
            if "to" in query
            else datetime.now(UTC)
        )
        at = end - timedelta(minutes=8)
        body = {
            "patient": OBSTETRIC,
            "from": iso(end - timedelta(minutes=30)),
            "to": iso(end),
            "monitored_since": iso(end - timedelta(minutes=30)),
            "monitored_seconds": 1800,
            "needs_minutes": None,
            "baseline_bpm": 140,
            "variability_bpm": 10.0,
            "accelerations": [
                {
                    "start": iso(at),
                    "end": iso(at + timedelta(seconds=30)),
                    "peak_bpm": 165,
                    "ongoing": False,
                }
            ],
            "decelerations": [
                {
                    "start": iso(at + timedelta(minutes=3)),
                    "end": iso(at + timedelta(minutes=4)),
                    "nadir_bpm": 110,
                    "depth_bpm": 30,
                    "prolonged": False,
                    "kind": "early",
                    "ongoing": False,
                }
            ],
            "contractions": [],
            "contractions_per_10_min": 3.3,
            "tachysystole": False,
            "signal_loss_percent": 3.1,
            "classification": "normal",
            "reasons": ["Baseline 140 bpm, variability 10 bpm, no repetitive decelerations."],
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))


@pytest.fixture
def strip_page(page_server, new_page):
    page = new_page()
    backend = MockBackend(page, patients=make_patients(6))
    routes = CtgRoutes(page)
    sign_in_and_open_ward(page, page_server, backend)
    page.click(f".tile[data-patient='{OBSTETRIC}'] .name")
    page.wait_for_function("() => Number(document.getElementById('ctg-strip')?.dataset.points) > 0")
    return page, backend, routes


def strip(page) -> dict[str, str]:
    return page.evaluate("() => ({...document.getElementById('ctg-strip').dataset})")


def span_seconds(data: dict[str, str]) -> float:
    return (
        datetime.fromisoformat(data["to"].replace("Z", "+00:00"))
        - datetime.fromisoformat(data["from"].replace("Z", "+00:00"))
    ).total_seconds()


def test_the_strip_is_drawn_with_its_analysis_and_gaps_as_gaps(strip_page):
    page, _backend, routes = strip_page
    page.wait_for_function(
        "() => document.getElementById('ctg-strip').dataset.decelerations === '1'"
    )
    data = strip(page)
    assert data["speed"] == "1" and int(data["points"]) > 1000
    assert data["fhrSegments"] == "2"  # the lost minute splits the fetal trace in two
    assert data["accelerations"] == "1"
    summary = page.inner_text("#ctg-summary")
    assert summary.startswith("CTG normal · baseline 140 bpm · variability 10 bpm")
    assert " · 30 min to " in summary  # the evaluator's window, named
    # Live, the header asks for the evaluator's window ending at the server's present (the
    # window's length is the server's), not for the strip's visible span.
    assert routes.analyses and all(q == {} for q in routes.analyses)
    # Something is actually painted: the canvas is not one flat colour.
    colours = page.evaluate(
        """() => { const c = document.getElementById('ctg-strip');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set(); for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] << 16 | d[i+1] << 8 | d[i+2]);
        return seen.size; }"""
    )
    assert colours > 5
    # A patient without the obstetric profile has no strip.
    page.goto(page.url.replace(f"/patient/{OBSTETRIC}", "/patient/1"))
    page.wait_for_selector("#patient-name")
    assert page.locator("#ctg-strip").count() == 0
    assert page.console_errors == []


def test_paper_speed_changes_the_visible_span(strip_page):
    page, _backend, routes = strip_page
    at_1 = span_seconds(strip(page))
    page.click("button[data-speed='3']")
    page.wait_for_function("() => document.getElementById('ctg-strip').dataset.speed === '3'")
    at_3 = span_seconds(strip(page))
    assert at_3 == pytest.approx(at_1 / 3, rel=0.05)
    assert page.get_attribute("button[data-speed='3']", "aria-pressed") == "true"
    start, end = routes.windows[-1]
    assert (end - start).total_seconds() == pytest.approx(at_3, rel=0.05)


def test_the_strip_scrolls_back_and_returns_to_live(strip_page):
    page, _backend, routes = strip_page
    live = strip(page)
    asked = len(routes.windows)
    page.click("#ctg-earlier")
    # Scrolled back: the strip ends well before where it ended live (a live strip's end moves
    # forward by itself meanwhile, so a mere change of `to` proves nothing).
    page.wait_for_function(
        "([live, quarter]) => Date.parse(document.getElementById('ctg-strip').dataset.to)"
        " < Date.parse(live) - quarter",
        arg=[live["to"], span_seconds(live) * 1000 / 4],
    )
    back = strip(page)
    moved = (
        datetime.fromisoformat(live["to"].replace("Z", "+00:00"))
        - datetime.fromisoformat(back["to"].replace("Z", "+00:00"))
    ).total_seconds()
    assert moved == pytest.approx(span_seconds(live) / 2, rel=0.1)
    assert len(routes.windows) > asked  # the older window was loaded from the server
    # Scrolled back, the header reads the evaluator's window ending at the right edge.
    page.wait_for_function(
        "(to) => Date.parse(document.getElementById('ctg-summary').dataset.to) === Date.parse(to)",
        arg=back["to"],
    )
    assert routes.analyses[-1]["to"] == [back["to"]]
    assert page.get_attribute("#ctg-live", "aria-pressed") == "false"
    page.click("#ctg-live")
    page.wait_for_function(
        "() => document.getElementById('ctg-live').getAttribute('aria-pressed') === 'true'"
    )
    # Live again: the strip ends at the present once the live window is drawn.
    page.wait_for_function(
        "() => Math.abs(Date.now() - Date.parse("
        "document.getElementById('ctg-strip').dataset.to)) < 30000"
    )
    to = datetime.fromisoformat(strip(page)["to"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - to).total_seconds()) < 30


def test_live_readings_extend_the_strip(strip_page):
    page, backend, _routes = strip_page
    before = int(strip(page)["points"])
    now = datetime.now(UTC)
    items = [
        {
            "patient": OBSTETRIC,
            "device": 103,
            "metric": metric,
            "value": value,
            "recorded_at": iso(now + timedelta(seconds=i)),
            "seq": 9000 + i * 3 + k,
        }
        for i in range(3)
        for k, (metric, value) in enumerate(
            (("fetal_heart_rate", 150), ("uterine_activity", 30), ("heart_rate", 90))
        )
    ]
    backend.push({"type": "readings", "items": items})
    page.wait_for_function(
        f"() => Number(document.getElementById('ctg-strip').dataset.points) > {before}"
    )


def test_the_strip_is_saved_as_a_png(strip_page):
    page, _backend, _routes = strip_page
    with page.expect_download() as download:
        page.click("#ctg-save")
    name = download.value.suggested_filename
    assert name.startswith(f"ctg-patient-{OBSTETRIC}-") and name.endswith(".png")
    path = download.value.path()
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
