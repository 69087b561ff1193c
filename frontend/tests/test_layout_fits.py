"""Every page of the dashboard fits a phone (390 x 844) and a station screen (1440 x 900): no
element reaches outside the viewport, nothing scrolls sideways, and text cut by its box ends
in an ellipsis; on the phone the active alarms come first. Against the scripted backend, with
alarms, notes and the CTG strip on screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from frontend.tests.mock_backend import MockBackend, iso, make_patients
from frontend.tests.test_ctg_strip import CtgRoutes

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}

# What does not fit: elements whose box (clipped by their scrolling or clipping ancestors)
# reaches past the viewport, boxes that scroll sideways, and text cut without an ellipsis.
MISFITS_JS = """
() => {
  const vw = document.documentElement.clientWidth;
  const name = (n) => n.tagName.toLowerCase() + (n.id ? '#' + n.id : '') +
    (typeof n.className === 'string' && n.className.trim() ? '.' + n.className.trim().split(/\\s+/).join('.') : '');
  const out = [];
  if (document.documentElement.scrollWidth > vw + 1) out.push(`the page scrolls sideways (${document.documentElement.scrollWidth} > ${vw})`);
  for (const n of document.body.querySelectorAll('*')) {
    if (n.closest('.visually-hidden, .skip-link, [hidden], noscript')) continue;
    const cs = getComputedStyle(n);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    const r = n.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    let left = r.left, right = r.right;
    for (let a = n.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') {
        const ar = a.getBoundingClientRect();
        left = Math.max(left, ar.left);
        right = Math.min(right, ar.right);
      }
    }
    if (right <= left) continue;  // wholly clipped by an ancestor that fits
    if (left < -0.5 || right > vw + 0.5) out.push(`${name(n)} spans ${Math.round(left)}..${Math.round(right)} of ${vw}`);
    const scrolls = cs.overflowX === 'auto' || cs.overflowX === 'scroll';
    if (scrolls && n.scrollWidth > n.clientWidth + 1) out.push(`${name(n)} scrolls sideways (${n.scrollWidth} > ${n.clientWidth})`);
    const cut = cs.overflowX === 'hidden' && n.scrollWidth > n.clientWidth + 1;
    const hasText = [...n.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    if (cut && hasText && cs.textOverflow !== 'ellipsis') out.push(`${name(n)} cuts its text without an ellipsis`);
  }
  return out;
}
"""


def assert_fits(page, where: str) -> None:
    misfits = page.evaluate(MISFITS_JS)
    assert misfits == [], (where, page.viewport_size, misfits)


def _note(patient: int, minutes_ago: float, text: str) -> dict:
    now = datetime.now(UTC)
    at = now - timedelta(minutes=minutes_ago)
    return {
        "id": int(minutes_ago * 10),
        "patient": patient,
        "at": iso(at),
        "text": text,
        "author": {"id": 1, "name": "Asha Rao"},
        "created_at": iso(at + timedelta(minutes=1)),
        "edited_at": None,
        "editable_until": iso(at + timedelta(minutes=16)),
        "addenda": [
            {
                "id": 99,
                "text": "Re-examined: 8 cm, membranes ruptured, clear liquor",
                "author": {"id": 2, "name": "Dr Vikram Mehta"},
                "created_at": iso(now),
            }
        ],
    }


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_page_fits_the_screen(page_server, new_page, viewport, artifacts_dir):
    page = new_page(viewport=viewport)
    backend = MockBackend(page, patients=make_patients(9))
    backend.notes = [
        _note(3, 4, "Vaginal examination 6 cm, cervix fully effaced, head at station 0"),
        _note(3, 9, "Epidural sited"),
    ]
    CtgRoutes(page)

    page.goto(page_server + "/")
    page.wait_for_selector("#email")
    assert_fits(page, "sign-in")

    page.fill("#email", "nurse@example.org")
    page.fill("#password", "secret-password")
    page.click("button[type=submit]")
    page.wait_for_selector("a.ward-link")
    assert_fits(page, "ward picker")

    page.click("a.ward-link")
    page.wait_for_selector(".tile[data-patient='9']")
    for alert_id, (patient, priority, kind) in enumerate(
        [
            (1, "high", "fetal_bradycardia"),
            (2, "medium", "ctg_pathological"),
            (4, "low", "fhr_signal_loss"),
        ],
        start=1,
    ):
        frame = backend.alert(alert_id, patient, priority, kind=kind)
        frame["alert"]["message"] = "Fetal heart rate below 110 bpm for 3 minutes (FIGO 2015)"
        backend.push(frame)
    page.wait_for_function(
        "() => document.querySelectorAll('.ward-alerts .alert-item').length === 3"
    )
    assert_fits(page, "ward")
    page.screenshot(path=str(artifacts_dir / f"fits-ward-{viewport['width']}.png"))
    if viewport is PHONE:
        # The active alarms first, above the tiles.
        alarms = page.locator(".ward-alerts").bounding_box()
        first_tile = page.locator(".tile").first.bounding_box()
        assert alarms is not None and first_tile is not None
        assert alarms["y"] + alarms["height"] <= first_tile["y"] + 1, (alarms, first_tile)
        assert alarms["y"] < 200

    page.click(".tile[data-patient='1'] .name")  # an adult patient with an active alarm
    page.wait_for_selector(".limits")
    page.wait_for_selector("#active-h + .alert-list .alert-item")
    assert_fits(page, "patient (adult)")
    if viewport is PHONE:
        active = page.locator(".card-active").bounding_box()
        identity = page.locator(".identity").bounding_box()
        assert active is not None and identity is not None
        assert active["y"] < identity["y"]
    page.click("#limits-edit")
    page.wait_for_selector(".limit-input")
    assert_fits(page, "patient (adult), editing alarm limits")

    page.goto(page_server + "/#/patient/3")  # obstetric: the CTG strip and its notes
    page.wait_for_function(
        "() => Number(document.getElementById('ctg-strip')?.dataset.notes) === 2"
    )
    page.wait_for_selector(".note-item")
    assert_fits(page, "patient (obstetric)")
    page.click("#ctg-add-note")
    page.wait_for_selector("#note-form:not([hidden])")
    page.click(".note-item .note-annotate")
    assert_fits(page, "patient (obstetric), note forms open")
    page.screenshot(
        path=str(artifacts_dir / f"fits-patient-{viewport['width']}.png"), full_page=True
    )
    assert page.console_errors == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_change_password_page_fits_the_screen(page_server, new_page, viewport):
    page = new_page(viewport=viewport)
    backend = MockBackend(page, patients=make_patients(3))
    backend.must_change_password = True
    page.goto(page_server + "/")
    page.fill("#email", "nurse@example.org")
    page.fill("#password", "one-time-password")
    page.click("button[type=submit]")
    page.wait_for_selector("#old-password")
    assert_fits(page, "change password")
